// What `train` and `fine-tune` share: progress, Ctrl-C, checkpoints, the report, saving and output.
import fs from 'node:fs';
import path from 'node:path';
import { resolveDistributed } from '../distributed';
import { VideoRNNError } from '../errors';
import type { EvalReport } from '../metrics';
import type { VideoRNN } from '../model';
import type { Precision } from '../options';
import type { ProgressEvent, TrainOptions, TrainReport } from '../training';
import type { ValidationSpec } from './arguments';
import type { TrainingData } from './datasets';
import { precisionInUse } from './common';
import { bytes, evaluationText, printJson, trainingText } from './format';
import { onInterrupt } from './interrupt';
import { ParallelFlags, distributedFrom } from './launch';
import { ProgressDisplay } from './progress';
import { FeatureStoreFlags, featureStoreText, featureStoreUse } from './feature-store';
import type { FeatureStoreOption } from '../features/types';
import { writeReport } from './report';

export interface TrainingFlags extends ParallelFlags, FeatureStoreFlags {
  output: string;
  precision: Precision;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adam' | 'sgd';
  momentum?: number;
  weightDecay: number;
  seed: number;
  val?: ValidationSpec;
  checkpointEvery?: number;
  resume?: string;
  backbone?: string;
  embedBackbone: boolean;
  report?: string;
  json: boolean;
  quiet: boolean;
}

export interface TrainingRun {
  command: 'train' | 'fine-tune';
  model: VideoRNN;
  dataset: string;
  data: TrainingData;
  flags: TrainingFlags;
  fineTune?: { trainableBackboneLayers: number; backboneLearningRate?: number };
  featureStore?: FeatureStoreOption;
}

/** Fails before minutes of training when a result could not be written. */
export function checkWritable(file: string, what: string): void {
  const folder = path.dirname(path.resolve(file));
  try {
    fs.accessSync(folder, fs.constants.W_OK);
  } catch (error) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', `Cannot write the ${what} ${file}: folder ${folder} is missing or not writable`, { cause: error });
  }
}

/** What the user has after Ctrl-C, read from the file itself rather than inferred from the progress events. */
function abortedError(error: VideoRNNError, output: string, checkpointing: boolean, epoch: number, started: number): VideoRNNError {
  const stats = fs.statSync(output, { throwIfNoEntry: false });
  let kept: string;
  // Some file systems keep whole seconds only.
  if (stats && stats.mtimeMs >= Math.floor(started / 1000) * 1000) {
    kept = `${output} holds the last checkpoint, saved at ${new Date(stats.mtimeMs).toLocaleTimeString()}`;
  } else if (stats) {
    kept = `no checkpoint was saved; ${output} was left as it was`;
  } else {
    kept = `no model was saved${checkpointing ? '' : ' (--checkpoint-every N saves one every N epochs)'}`;
  }
  return new VideoRNNError('E_ABORTED', `training was interrupted in epoch ${epoch}; ${kept}`, { cause: error });
}

export async function runTrainingCommand(run: TrainingRun): Promise<void> {
  const { model, data, flags } = run;
  const precision = precisionInUse(model.device, flags.precision);
  const distributed = distributedFrom(flags, model.device);
  // One rank of a group: rank 0 alone saves, reports and prints; the others train and stay quiet.
  const group = distributed ? resolveDistributed(distributed) : undefined;
  const leader = !group || group.rank === 0;
  checkWritable(flags.output, 'model');
  if (flags.report) checkWritable(flags.report, 'report');
  const progress = new ProgressDisplay({ enabled: !flags.quiet && leader, validation: data.validation !== undefined });
  const interrupt = onInterrupt((message) => progress.note(message), () => progress.stop());
  let epoch = 1;
  const onProgress = (event: ProgressEvent): void => {
    progress.update(event);
    epoch = event.epoch;
  };
  const options: TrainOptions = {
    epochs: flags.epochs, batchSize: flags.batchSize, learningRate: flags.lr, optimizer: flags.optimizer,
    momentum: flags.momentum, weightDecay: flags.weightDecay, seed: flags.seed, validation: data.validation, signal: interrupt.signal, onProgress,
    checkpoint: flags.checkpointEvery ? { path: flags.output, everyEpochs: flags.checkpointEvery, embedBackbone: flags.embedBackbone } : undefined,
    resume: flags.resume,
    distributed,
  };
  const started = Date.now();
  progress.begin();
  try {
    let report: TrainReport;
    try {
      report = run.fineTune
        ? await model.fineTune(data.train, { ...options, ...run.fineTune })
        : await model.train(data.train, options);
    } catch (error) {
      if (error instanceof VideoRNNError && error.code === 'E_ABORTED') {
        // Rank 0 tells the user what was kept; the others only see their own part of the run.
        if (group && !leader) throw new VideoRNNError('E_ABORTED', `rank ${group.rank} of ${group.worldSize} stopped with the group`, { cause: error });
        throw abortedError(error, flags.output, options.checkpoint !== undefined, epoch, started);
      }
      throw error;
    }
    if (!leader) return;
    // A checkpoint run has already written the last epoch to the output.
    if (!options.checkpoint) await model.save(flags.output, { embedBackbone: flags.embedBackbone });
    let evaluation: EvalReport | undefined = report.validation;
    if (flags.report) {
      evaluation ??= await model.evaluate(data.train, { batchSize: flags.batchSize, signal: interrupt.signal });
      await writeReport(flags.report, {
        command: run.command, dataset: run.dataset, model: flags.output, config: model.config, training: report, evaluation,
        evaluationName: report.validation ? 'validation set' : 'training set',
        settings: { 'batch size': flags.batchSize, 'learning rate': flags.lr, optimizer: flags.optimizer, 'weight decay': flags.weightDecay,
          seed: flags.seed, device: model.device, precision, ...(run.fineTune ? { 'unfrozen backbone layers': run.fineTune.trainableBackboneLayers } : {}) },
      });
    }
    progress.stop();
    const size = fs.statSync(flags.output).size;
    const stats = model.stats;
    const store = featureStoreUse(run.featureStore, stats);
    if (flags.json) {
      printJson({ command: run.command, model: path.resolve(flags.output), modelBytes: size, precision, dataset: run.dataset,
        classes: model.classes, training: report, report: flags.report ? path.resolve(flags.report) : undefined,
        framesEmbedded: stats.framesEmbedded, videosDecoded: stats.videosDecoded, featureStore: store });
      return;
    }
    const lines = [trainingText(report)];
    if (report.validation) lines.push('', `validation set (${report.validation.count} clips):`, evaluationText(report.validation, model.classes));
    if (store) lines.push(featureStoreText(store));
    lines.push('', `model saved to ${flags.output} (${bytes(size)})`);
    if (flags.report) lines.push(`report written to ${flags.report}`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    progress.stop();
    interrupt.release();
  }
}
