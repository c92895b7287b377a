// Epochs, batching, shuffling, prefetch, progress, abort and validation, in TypeScript; one native
// call does one batch step. With a frozen backbone, embeddings are cached per video (src/cache-key.ts)
// so that later epochs neither decode nor run the CNN.
import { MetricsAccumulator, EvalReport } from './metrics';
import { VideoRNNError, checkInteger, checkNumber, checkString, invalidArgument, throwIfAborted } from './errors';
import { DecodeSpec, chunk, nativeClip, pipelined, toClip } from './inputs';
import { NativeClip, NativeModel, callNative } from './native';
import type { ModelConfig } from './options';
import { MAX_TRAINABLE_BACKBONE_LAYERS } from './constants';
import { CacheKeyer, cacheKeyer } from './cache-key';
import { Dataset, split } from './data';
import { checkLabel } from './data/dataset';
import { createRandom, shuffleInPlace } from './data/random';
import { DistributedOptions, ResolvedDistributed, distributedError, shardBatches, shardIndices } from './distributed';
import { LoadedState, ResumableSettings, checkSameEpoch, loadWithState, restoreOptimizer, saveWithState } from './resume';
import type { FeatureStoreOption } from './features/types';
import { FeatureContext, storedBatch } from './features/use';

export interface ProgressEvent {
  phase: 'train' | 'validate' | 'evaluate' | 'extract';
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
  samplesPerSecond: number;
  eta: number; // seconds left in the whole run (train) or in this pass (validate/evaluate)
}

export interface TrainOptions {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  optimizer?: 'adam' | 'sgd';
  /** SGD momentum, as torch.optim.SGD's (no dampening, not Nesterov); default 0.9. Adam ignores it. */
  momentum?: number;
  weightDecay?: number;
  validation?: Dataset | number;
  shuffle?: boolean;
  seed?: number;
  signal?: AbortSignal;
  cacheEmbeddings?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  /** Saves the model (and its `.state`) every `everyEpochs` epochs; `embedBackbone` as in `save`. */
  checkpoint?: { path: string; everyEpochs?: number; embedBackbone?: boolean };
  /** A checkpoint saved by an earlier run, with its `.state` file: this run continues that one. */
  resume?: string;
  /** Data-parallel training across processes; also read from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT. */
  distributed?: DistributedOptions | boolean;
  /** The feature store for this run (overrides the model's); used only while the backbone is frozen. */
  featureStore?: FeatureStoreOption;
}

export interface FineTuneOptions extends TrainOptions {
  trainableBackboneLayers: number;
  backboneLearningRate?: number;
}

export interface EpochReport {
  epoch: number;
  loss: number;
  accuracy: number;
  seconds: number;
  validation?: { loss: number; accuracy: number };
}

export interface TrainReport {
  epochs: EpochReport[];
  loss: number;
  accuracy: number;
  validation?: EvalReport;
  seconds: number;
  samplesPerSecond: number;
}

/** What the training loop needs from a model. */
export interface TrainingHost {
  native: NativeModel;
  config: ModelConfig;
  decode(signal?: AbortSignal): DecodeSpec;
  save(path: string, embedBackbone: boolean): Promise<void>;
  /** Loads a checkpoint (and, for a small one, the backbone it references when the model has another) into the model. */
  load(path: string): Promise<void>;
  /** Training with `layers` backbone layers trainable is about to start. */
  markTrained(layers: number): void;
  /** Set when this process is one rank of a data-parallel group. */
  group?: ResolvedDistributed;
  /**
   * The feature store of a call (its option, else the model's), or undefined without one. With a
   * trainable backbone there is none: a configured store is then ignored with a warning.
   */
  features(option: FeatureStoreOption | undefined, frozen: boolean): Promise<FeatureContext | undefined>;
}

/**
 * Whether to stop before the next step. Alone, the signal decides. In a group, every rank must stop at
 * the same step, or the others would wait in a collective until the timeout: the ranks add up their
 * abort flags (one tiny allreduce per step) and all stop when any of them was aborted.
 */
async function stopIfAborted(host: TrainingHost, signal: AbortSignal | undefined): Promise<void> {
  const group = host.group;
  if (!group) {
    throwIfAborted(signal, 'training');
    return;
  }
  const [aborted] = await collective(host, () => host.native.sumOverRanks([signal?.aborted ? 1 : 0]));
  if (aborted > 0) {
    throw new VideoRNNError('E_ABORTED', signal?.aborted ? 'training was aborted'
      : `training was aborted on another rank of the group (this is rank ${group.rank} of ${group.worldSize})`,
    { cause: signal?.reason });
  }
}

/** A native call whose failure, in a group, is reported as E_DISTRIBUTED when a peer caused it. */
async function collective<T>(host: TrainingHost, run: () => Promise<T>): Promise<T> {
  try {
    return await callNative(run);
  } catch (error) {
    throw host.group ? distributedError(error, host.group) : error;
  }
}

function checkDataset(data: Dataset, config: ModelConfig, name: string): void {
  if (typeof data !== 'object' || data === null || typeof data.sample !== 'function' || !Number.isInteger(data.size)) {
    throw invalidArgument(name, 'a Dataset', data);
  }
  if (data.size < 1) throw new VideoRNNError('E_INVALID_ARGUMENT', `${name} is empty`);
  const same = data.classes.length === config.classes.length && data.classes.every((label, index) => label === config.classes[index]);
  if (!same) {
    throw new VideoRNNError('E_INVALID_ARGUMENT',
      `${name} has classes [${data.classes.join(', ')}] but the model has [${config.classes.join(', ')}] (same names, same order)`);
  }
}

interface PreparedBatch {
  clips: NativeClip[];
  labels: number[];
}

async function prepareBatch(host: TrainingHost, data: Dataset, indices: number[], spec: DecodeSpec,
  keyOf: CacheKeyer | undefined, features?: FeatureContext): Promise<PreparedBatch> {
  const samples = indices.map((index) => data.sample(index));
  // Labels are checked before any decoding, so a bad one costs nothing.
  for (const sample of samples) checkLabel(sample.label, host.config.classes.length, `sample ${sample.id}`);
  if (features) {
    const sources = await Promise.all(samples.map(async (sample) =>
      ({ source: sample.source, name: `sample ${sample.id}`, cacheKey: await keyOf?.(sample.source) })));
    return { clips: await storedBatch(host.native, features, sources, spec), labels: samples.map((sample) => sample.label) };
  }
  const clips = await Promise.all(samples.map(async (sample) => {
    const key = await keyOf?.(sample.source);
    if (key !== undefined && host.native.isCached(key)) return { cacheKey: key };
    const clip = await toClip(sample.source, spec, `sample ${sample.id}`);
    return nativeClip(clip, key, key !== undefined);
  }));
  return { clips, labels: samples.map((sample) => sample.label) };
}

export interface EvaluateSettings {
  batchSize: number;
  signal?: AbortSignal;
  cacheEmbeddings: boolean;
  fingerprint?: string;
  /** The feature store behind the memory cache (a frozen backbone only). */
  features?: FeatureContext;
  onProgress?: (event: ProgressEvent) => void;
  phase?: 'validate' | 'evaluate';
  epoch?: number;
  epochs?: number;
}

export async function evaluateDataset(host: TrainingHost, data: Dataset, settings: EvaluateSettings): Promise<EvalReport> {
  checkDataset(data, host.config, 'data');
  const frozen = host.config.trainableBackboneLayers === 0;
  let keyOf: CacheKeyer | undefined;
  if (settings.cacheEmbeddings && frozen) {
    keyOf = cacheKeyer(host.config, settings.fingerprint ?? await callNative(() => host.native.fingerprint()));
  }
  const metrics = new MetricsAccumulator(host.config.classes);
  const group = host.group;
  const indices = group ? shardIndices(data.size, group.rank, group.worldSize) : Array.from({ length: data.size }, (_, index) => index);
  const batches = chunk(indices, settings.batchSize);
  const report = group && group.rank !== 0 ? undefined : settings.onProgress;
  const spec = host.decode(settings.signal);
  const started = performance.now();
  let done = 0;
  const features = frozen ? settings.features : undefined;
  await pipelined(batches, (indices) => prepareBatch(host, data, indices, spec, keyOf, features), async (batch, index) => {
    throwIfAborted(settings.signal, 'evaluation');
    const result = await callNative(() => host.native.evaluate(batch.clips, batch.labels));
    metrics.add(result.probabilities, batch.labels, result.loss);
    done += batch.labels.length;
    const sofar = metrics.report();
    const rate = done / ((performance.now() - started) / 1000);
    report?.({ phase: settings.phase ?? 'evaluate', epoch: settings.epoch ?? 0, epochs: settings.epochs ?? 0,
      batch: index + 1, batches: batches.length, loss: sofar.loss, accuracy: sofar.accuracy,
      samplesPerSecond: rate, eta: (indices.length - done) / rate });
  });
  if (group) metrics.loadVector(await collective(host, () => host.native.sumOverRanks(metrics.toVector())));
  return metrics.report();
}

interface ResolvedTraining {
  epochs: number;
  batchSize: number;
  learningRate: number;
  backboneLearningRate: number;
  optimizer: 'adam' | 'sgd';
  momentum: number;
  weightDecay: number;
  shuffle: boolean;
  seed: number;
  cacheEmbeddings: boolean;
  everyEpochs: number;
}

function resolveTraining(options: TrainOptions & Partial<FineTuneOptions>): ResolvedTraining {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  const learningRate = checkNumber('learningRate', options.learningRate ?? 1e-3, 0, 10);
  const optimizer = options.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw invalidArgument('optimizer', "'adam' or 'sgd'", optimizer);
  if (options.momentum !== undefined && optimizer !== 'sgd') {
    throw new VideoRNNError('E_INVALID_ARGUMENT', "momentum applies to optimizer 'sgd' only (Adam's moments are fixed at 0.9, 0.999)");
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress', 'a function', options.onProgress);
  if (options.checkpoint !== undefined && (typeof options.checkpoint !== 'object' || typeof options.checkpoint.path !== 'string')) {
    throw invalidArgument('checkpoint', 'an object { path, everyEpochs?, embedBackbone? }', options.checkpoint);
  }
  if (options.checkpoint?.embedBackbone !== undefined && typeof options.checkpoint.embedBackbone !== 'boolean') {
    throw invalidArgument('checkpoint.embedBackbone', 'a boolean', options.checkpoint.embedBackbone);
  }
  return {
    epochs: checkInteger('epochs', options.epochs ?? 10, 1, 1_000_000),
    batchSize: checkInteger('batchSize', options.batchSize ?? 8, 1, 1024),
    learningRate,
    backboneLearningRate: checkNumber('backboneLearningRate', options.backboneLearningRate ?? learningRate / 10, 0, 10),
    optimizer,
    momentum: checkNumber('momentum', options.momentum ?? 0.9, 0, 1),
    weightDecay: checkNumber('weightDecay', options.weightDecay ?? 0, 0, 10),
    shuffle: options.shuffle ?? true,
    seed: checkInteger('seed', options.seed ?? 0, 0, 2 ** 32 - 1),
    cacheEmbeddings: options.cacheEmbeddings ?? true,
    everyEpochs: checkInteger('checkpoint.everyEpochs', options.checkpoint?.everyEpochs ?? 1, 1, 1_000_000),
  };
}

function resumableSettings(settings: ResolvedTraining, trainableBackboneLayers: number): ResumableSettings {
  const { optimizer, learningRate, backboneLearningRate, momentum, weightDecay, batchSize, shuffle, seed } = settings;
  return { optimizer, learningRate, backboneLearningRate, momentum, weightDecay, trainableBackboneLayers, batchSize, shuffle, seed };
}

export async function runTraining(host: TrainingHost, data: Dataset, options: TrainOptions & Partial<FineTuneOptions>,
  trainableLayers: number): Promise<TrainReport> {
  const settings = resolveTraining(options);
  checkInteger('trainableBackboneLayers', trainableLayers, 0, MAX_TRAINABLE_BACKBONE_LAYERS);
  checkDataset(data, host.config, 'data');
  let train = data;
  let validation: Dataset | undefined;
  if (typeof options.validation === 'number') {
    const parts = split(data, checkNumber('validation', options.validation, 0.000001, 0.999999), settings.seed);
    ({ train, validation } = parts);
  } else if (options.validation !== undefined) {
    validation = options.validation;
    checkDataset(validation, host.config, 'validation');
  }
  const signal = options.signal;
  throwIfAborted(signal, 'training');
  const native = host.native;
  // A resumed run takes the stopped run's weights and settings; only the number of epochs is this run's.
  const resumed = options.resume === undefined ? undefined
    : await loadWithState(checkString('resume', options.resume), (path) => host.load(path));
  if (resumed) {
    const { trainableBackboneLayers, ...saved } = resumed.settings;
    Object.assign(settings, saved);
    trainableLayers = trainableBackboneLayers;
  }
  await callNative(() => native.configureTraining({ optimizer: settings.optimizer, learningRate: settings.learningRate,
    backboneLearningRate: settings.backboneLearningRate, weightDecay: settings.weightDecay, momentum: settings.momentum,
    trainableBackboneLayers: trainableLayers }));
  if (resumed) await restoreOptimizer(native, resumed);
  host.markTrained(trainableLayers);
  if (resumed && host.group) await checkSameEpoch(resumed, (values) => collective(host, () => native.sumOverRanks(values)), host.group.worldSize);
  try {
    return await trainEpochs(host, train, validation, settings, trainableLayers, options, resumed);
  } finally {
    // A fine-tune unfreezes layers for its own run only; the model goes back to its configured state.
    if (trainableLayers !== host.config.trainableBackboneLayers) {
      await callNative(() => native.configureTraining({ optimizer: settings.optimizer, learningRate: settings.learningRate,
        weightDecay: settings.weightDecay, momentum: settings.momentum,
        trainableBackboneLayers: host.config.trainableBackboneLayers })).catch(() => undefined);
    }
  }
}

async function trainEpochs(host: TrainingHost, train: Dataset, validation: Dataset | undefined, settings: ResolvedTraining,
  trainableLayers: number, options: TrainOptions, resumed?: LoadedState): Promise<TrainReport> {
  const { signal } = options;
  const native = host.native;
  const group = host.group;
  // In a group, rank 0 alone reports progress; local rank 0 of each machine writes checkpoints.
  const leader = !group || group.rank === 0;
  // One checkpoint writer per machine (local rank 0), so every machine can resume from its own files.
  const writer = !group || group.localRank === 0;
  const onProgress = leader ? options.onProgress : undefined;
  const caching = settings.cacheEmbeddings && trainableLayers === 0;
  const fingerprint = caching ? await callNative(() => native.fingerprint()) : undefined;
  const keyOf = fingerprint !== undefined ? cacheKeyer(host.config, fingerprint) : undefined;
  const features = await host.features(options.featureStore, trainableLayers === 0);
  const random = createRandom(settings.seed);
  // In a group an abort is agreed on at a step (stopIfAborted), so decoding must not stop on its own.
  const spec = host.decode(group ? undefined : signal);
  const order = Array.from({ length: train.size }, (_, index) => index);
  const epochs: EpochReport[] = [];
  const runStarted = performance.now();
  let samplesDone = 0;
  let lastValidation: EvalReport | undefined;
  const first = (resumed?.epoch ?? 0) + 1;
  if (first > settings.epochs) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', `the resumed run has already trained ${first - 1} epochs; ask for more than that`);
  }
  for (let shuffled = 0; shuffled < (resumed?.shuffles ?? 0); shuffled += 1) shuffleInPlace(order, random);
  for (let epoch = first; epoch <= settings.epochs; epoch += 1) {
    if (settings.shuffle) shuffleInPlace(order, random);
    const batches = group ? shardBatches(order, settings.batchSize, group.rank, group.worldSize) : chunk(order, settings.batchSize);
    const epochStarted = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    await pipelined(batches, (indices) => prepareBatch(host, train, indices, spec, keyOf, features), async (batch, index) => {
      await stopIfAborted(host, signal);
      const result = await collective(host, () => native.trainStep(batch.clips, batch.labels));
      if (!result.stepped || !Number.isFinite(result.loss)) {
        throw new VideoRNNError('E_NON_FINITE_LOSS',
          `the loss became ${result.loss} at epoch ${epoch}, batch ${index + 1} of ${batches.length}; ` +
          'the weights were left as they were before that batch (try a lower learningRate)');
      }
      const count = batch.labels.length;
      lossSum += result.loss * count;
      batch.labels.forEach((label, row) => {
        const scores = result.probabilities.subarray(row * result.classes, (row + 1) * result.classes);
        let best = 0;
        for (let c = 1; c < scores.length; c += 1) if (scores[c] > scores[best]) best = c;
        if (best === label) correct += 1;
      });
      seen += count;
      samplesDone += count;
      const rate = samplesDone / ((performance.now() - runStarted) / 1000);
      onProgress?.({ phase: 'train', epoch, epochs: settings.epochs, batch: index + 1, batches: batches.length,
        loss: lossSum / seen, accuracy: correct / seen, samplesPerSecond: rate,
        eta: ((settings.epochs - first + 1) * train.size - samplesDone) / rate });
      if (!group) throwIfAborted(signal, 'training');
    });
    if (group) [lossSum, correct, seen] = await collective(host, () => native.sumOverRanks([lossSum, correct, seen]));
    const report: EpochReport = { epoch, loss: lossSum / seen, accuracy: correct / seen, seconds: (performance.now() - epochStarted) / 1000 };
    if (validation) {
      // In a group, validation runs to its end; an abort then stops the next epoch's first step.
      lastValidation = await evaluateDataset(host, validation, { batchSize: settings.batchSize, signal: group ? undefined : signal,
        cacheEmbeddings: caching,
        fingerprint, features, onProgress, phase: 'validate', epoch, epochs: settings.epochs });
      report.validation = { loss: lastValidation.loss, accuracy: lastValidation.accuracy };
    }
    epochs.push(report);
    if (options.checkpoint && (epoch % settings.everyEpochs === 0 || epoch === settings.epochs)) {
      const barrier = async (): Promise<void> => { if (group) await collective(host, () => native.sumOverRanks([1])); };
      const embed = options.checkpoint.embedBackbone ?? false;
      await saveWithState(native, options.checkpoint.path, writer, (path) => host.save(path, embed), barrier, { epoch,
        shuffles: settings.shuffle ? epoch : 0, worldSize: group?.worldSize ?? 1, settings: resumableSettings(settings, trainableLayers) });
    }
  }
  const seconds = (performance.now() - runStarted) / 1000;
  const last = epochs[epochs.length - 1];
  return { epochs, loss: last.loss, accuracy: last.accuracy, validation: lastValidation, seconds, samplesPerSecond: samplesDone / seconds };
}
