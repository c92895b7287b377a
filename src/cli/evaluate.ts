// `video-rnn evaluate <model> <dataset>`: accuracy, mean class accuracy, per-class accuracy and the
// confusion matrix of a saved model on a labelled dataset.
import { Command } from 'commander';
import path from 'node:path';
import { VideoRNN } from '../model';
import type { Device, Precision } from '../options';
import * as parse from './arguments';
import { addBackboneOption, addDeviceOption, addOutputOptions, addPrecisionOption, precisionInUse } from './common';
import { openDataset } from './datasets';
import { evaluationText, printJson } from './format';
import { onInterrupt } from './interrupt';
import { ProgressDisplay } from './progress';
import { FeatureStoreFlags, addFeatureStoreOptions, featureStoreFrom, featureStoreText, featureStoreUse } from './feature-store';
import type { EvalReport } from '../metrics';

interface EvaluateFlags extends FeatureStoreFlags {
  backbone?: string;
  batchSize: number;
  root?: string;
  device: Device;
  precision: Precision;
  json: boolean;
  quiet: boolean;
}

export function registerEvaluate(program: Command): void {
  const command = program.command('evaluate')
    .description('measure a saved model on a labelled dataset')
    .argument('<model>', 'a model saved by train or fine-tune (.safetensors)')
    .argument('<dataset>', 'dataset folder or manifest, labelled with the classes of the model')
    .option('--batch-size <n>', 'clips per forward pass', parse.positiveInteger, 8)
    .option('--root <dir>', "folder that a manifest's relative paths start from (default: the manifest's folder)");
  addDeviceOption(command);
  addBackboneOption(command);
  addPrecisionOption(command);
  addFeatureStoreOptions(command);
  addOutputOptions(command);
  command.action(async (modelFile: string, dataset: string, flags: EvaluateFlags) => {
    const featureStore = featureStoreFrom(flags);
    const model = await VideoRNN.load(modelFile, { device: flags.device, precision: flags.precision, backboneWeights: flags.backbone, featureStore });
    const note = (message: string): void => { if (!flags.quiet) process.stderr.write(`${message}\n`); };
    const interrupt = onInterrupt(note);
    try {
      const precision = precisionInUse(model.device, flags.precision);
      const data = await openDataset(dataset, { root: flags.root, classes: model.classes });
      note(`evaluating ${data.size} clips...`);
      const progress = new ProgressDisplay({ enabled: !flags.quiet, validation: false });
      progress.begin();
      let report: EvalReport;
      try {
        report = await model.evaluate(data, { batchSize: flags.batchSize, signal: interrupt.signal,
          onProgress: (event) => progress.update(event) });
      } finally {
        progress.stop();
      }
      if (flags.json) {
        printJson({ model: path.resolve(modelFile), precision, dataset, classes: model.classes, ...report,
          framesEmbedded: model.stats.framesEmbedded, featureStore: featureStoreUse(featureStore, model.stats) });
        return;
      }
      const store = featureStoreUse(featureStore, model.stats);
      process.stdout.write(`${dataset} (${report.count} clips):\n${evaluationText(report, model.classes)}\n${store ? `\n${featureStoreText(store)}\n` : ''}`);
    } finally {
      interrupt.release();
      model.dispose();
    }
  });
}
