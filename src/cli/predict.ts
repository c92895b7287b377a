// `video-rnn predict <model> <video...>`: the most likely classes of each video.
import { Command } from 'commander';
import path from 'node:path';
import { VideoRNN } from '../model';
import type { Device, Precision } from '../options';
import * as parse from './arguments';
import { addBackboneOption, addDeviceOption, addPrecisionOption, precisionInUse } from './common';
import { predictionText, printJson } from './format';
import { FeatureStoreFlags, addFeatureStoreOptions, featureStoreFrom, featureStoreUse } from './feature-store';

interface PredictFlags extends FeatureStoreFlags {
  backbone?: string;
  top: number;
  batchSize: number;
  device: Device;
  precision: Precision;
  json: boolean;
}

export function registerPredict(program: Command): void {
  const command = program.command('predict')
    .description('classify videos with a saved model')
    .argument('<model>', 'a model saved by train or fine-tune (.safetensors)')
    .argument('<video...>', 'video files')
    .option('--top <k>', 'how many classes to list per video', parse.positiveInteger, 5)
    .option('--batch-size <n>', 'videos per forward pass', parse.positiveInteger, 8)
    .option('--json', 'print one JSON object on stdout instead of text', false);
  addDeviceOption(command);
  addBackboneOption(command);
  addPrecisionOption(command);
  addFeatureStoreOptions(command);
  command.action(async (modelFile: string, videos: string[], flags: PredictFlags) => {
    const featureStore = featureStoreFrom(flags);
    const model = await VideoRNN.load(modelFile, { device: flags.device, precision: flags.precision, backboneWeights: flags.backbone, featureStore });
    try {
      const precision = precisionInUse(model.device, flags.precision);
      const topK = Math.min(flags.top, model.classes.length);
      const predictions = await model.predict(videos, { topK, batchSize: flags.batchSize });
      if (flags.json) {
        printJson({ model: path.resolve(modelFile), precision, classes: model.classes,
          predictions: predictions.map((prediction, index) => ({ video: videos[index], ...prediction })),
          featureStore: featureStoreUse(featureStore, model.stats) });
        return;
      }
      process.stdout.write(predictions.map((prediction, index) => predictionText(videos[index], prediction)).join('\n') + '\n');
    } finally {
      model.dispose();
    }
  });
}
