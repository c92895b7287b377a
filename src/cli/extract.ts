// `video-rnn extract <dataset> --features DIR`: fills a feature store with the fc7 embeddings of every
// clip of a dataset, once, so that later training runs, trials and evaluations skip decoding and VGG16.
// Entries already in the store are skipped, so a killed run resumes by running it again.
import { Command } from 'commander';
import path from 'node:path';
import { resolveDistributed, shardIndices } from '../distributed';
import { ErrorCode, VideoRNNError } from '../errors';
import { VideoRNN } from '../model';
import { type Device, LIMITS, type Precision, type Sampling } from '../options';
import { MIN_FRAME_SIZE } from '../constants';
import * as parse from './arguments';
import { addDeviceOption, addOutputOptions, addParallelOptions, addPrecisionOption, checkBackend, precisionInUse } from './common';
import { openDataset } from './datasets';
import { FeatureStoreFlags, addFeatureStoreOptions, featureStoreFrom } from './feature-store';
import { printJson, seconds } from './format';
import { onInterrupt } from './interrupt';
import { ParallelFlags, WorkersExited, distributedFrom, launchWorkers, launches, workerDevice } from './launch';
import { ProgressDisplay } from './progress';

interface ExtractFlags extends ParallelFlags, FeatureStoreFlags {
  weights?: string;
  seed: number;
  frameSize: number;
  fps?: number;
  maxFrames?: number;
  frames?: number;
  batchSize: number;
  root?: string;
  device: Device;
  precision: Precision;
  json: boolean;
  quiet: boolean;
}

type ExtractReport = Awaited<ReturnType<VideoRNN['extract']>>;

export function samplingFrom(flags: { fps?: number; maxFrames?: number; frames?: number }): Sampling {
  const sampling: Sampling = {};
  if (flags.fps !== undefined) sampling.fps = flags.fps;
  if (flags.maxFrames !== undefined) sampling.maxFrames = flags.maxFrames;
  if (flags.frames !== undefined) sampling.frames = flags.frames;
  return sampling;
}

function summaryText(report: ExtractReport, store: string, failed: number): string {
  return `extracted ${report.clips} clips into ${store} in ${seconds(report.seconds)} (${report.clipsPerSecond.toFixed(2)} clips/s): ` +
    `${report.computed} computed, ${report.present} already present, ${failed} failed` +
    (report.refused > 0 ? `, ${report.refused} not kept (the store's size bound)` : '');
}

export function registerExtract(program: Command): void {
  const command = program.command('extract')
    .description('compute the fc7 embeddings of every clip of a dataset into a feature store (entries already there are skipped)')
    .argument('<dataset>', 'dataset folder (<dataset>/<class>/<video>) or manifest (path label lines, CSV, UCF101 list)');
  addFeatureStoreOptions(command, true)
    .option('--weights <file>', 'VGG16 weights (.pth or .safetensors), as given to train; default: random initialisation from --seed')
    .option('--seed <n>', 'seed of the random VGG16 without --weights (use the seed train will use)', parse.nonNegativeInteger, 0)
    .option('--frame-size <px>', 'frames are resized and centre-cropped to this square, as in train', parse.integerBetween(MIN_FRAME_SIZE, LIMITS.frameSize), 224)
    .option('--fps <rate>', 'decode at this frame rate (default: every frame)', parse.positiveNumber)
    .option('--max-frames <n>', 'keep at most this many frames per clip', parse.positiveInteger)
    .option('--frames <n>', 'take exactly this many frames, spread over the clip', parse.positiveInteger)
    .option('--batch-size <n>', 'clips per forward pass', parse.positiveInteger, 8)
    .option('--root <dir>', "folder that a manifest's relative paths start from (default: the manifest's folder)");
  addDeviceOption(command);
  addPrecisionOption(command);
  addParallelOptions(command, 'extract');
  addOutputOptions(command);
  command.action(async (dataset: string, flags: ExtractFlags) => {
    const featureStore = featureStoreFrom(flags);
    const storePath = flags.features as string;
    if (launches(flags)) {
      checkBackend(flags.device, flags.precision);
      throw new WorkersExited(await launchWorkers(process.argv, flags));
    }
    const data = await openDataset(dataset, { root: flags.root });
    // The head is never used: the smallest one keeps the model's memory to VGG16's.
    const model = await VideoRNN.create({
      classes: data.classes, backboneWeights: flags.weights, hiddenSize: 1, headSize: 1, frameSize: flags.frameSize,
      sampling: samplingFrom(flags), device: workerDevice(flags.device), precision: flags.precision, seed: flags.seed, threads: flags.threads,
    });
    let interrupt: ReturnType<typeof onInterrupt> | undefined;
    try {
      const distributed = distributedFrom(flags, model.device);
      const group = distributed ? resolveDistributed(distributed) : undefined;
      const leader = !group || group.rank === 0;
      const clips = group ? shardIndices(data.size, group.rank, group.worldSize).length : data.size;
      const display = new ProgressDisplay({ enabled: !flags.quiet && leader, validation: false,
        extract: { clips, batchSize: flags.batchSize, shard: group ? `rank 0's shard of ${group.worldSize}` : undefined } });
      interrupt = onInterrupt((message) => display.note(message), () => display.stop());
      display.begin();
      let report: ExtractReport;
      try {
        report = await model.extract(data, { featureStore, batchSize: flags.batchSize, signal: interrupt.signal,
          onProgress: display.update, distributed });
      } catch (error) {
        if (error instanceof VideoRNNError && error.code === 'E_ABORTED') {
          throw new VideoRNNError('E_ABORTED', `extraction was interrupted; the entries written so far stay in ${storePath}, ` +
            'and the same command resumes from them', { cause: error });
        }
        throw error;
      } finally {
        display.stop();
      }
      // The counts are the group's; each rank lists the failures of its own shard.
      const failedCount = report.clips - report.computed - report.present - report.refused;
      if (leader) {
        const precision = precisionInUse(model.device, flags.precision);
        // What this process itself decoded and ran through VGG16: the work a resumed run does not redo.
        const { videosDecoded, framesEmbedded } = model.stats;
        if (flags.json) printJson({ command: 'extract', dataset, features: path.resolve(storePath), precision, ...report, failedCount, videosDecoded, framesEmbedded });
        else process.stdout.write(summaryText(report, storePath, failedCount) + '\n');
      }
      for (const failure of report.failed) process.stderr.write(`video-rnn: failed: ${failure.id}: ${failure.code}: ${failure.message}\n`);
      if (report.failed.length > 0 || (leader && failedCount > 0)) {
        throw new VideoRNNError((report.failed[0]?.code ?? 'E_VIDEO_DECODE') as ErrorCode,
          `${failedCount} of ${report.clips} clips could not be extracted (listed above${group ? ' by their ranks' : ''}); ` +
          'the others are in the store, and running the same command again retries only the failed ones');
      }
    } finally {
      interrupt?.release();
      model.dispose();
    }
  });
}
