// The public model: create, load, save, predict, embed, evaluate, train, fineTune, dispose.
// Calls on one model run one at a time, in call order (a queue): a predict issued while training
// runs waits until training has finished.
import type { Clip } from './clip';
import { BACKBONE_PREFIX, toNativeTensors, withCheckpoint } from './checkpoint';
import { VideoRNNError, checkInteger, checkString, invalidArgument } from './errors';
import { DecodeSpec, VideoInput, chunk, groupBySize, nativeClip, pipelined, toClip } from './inputs';
import { EvalReport, Prediction, prediction } from './metrics';
import { ConvolutionCounts, NativeModel, addon, callNative } from './native';
import { ModelConfig, VideoRNNOptions, resolveBackend, resolveConfig } from './options';
import { FineTuneOptions, ProgressEvent, TrainOptions, TrainReport, TrainingHost, evaluateDataset, runTraining } from './training';
import type { Dataset } from './data';
import { writeSafetensors } from './weights';
import { loadBackbone } from './weights/reference';
import { BackboneInfo, BackboneSource, ModelBackbone, checkpointBackbone } from './model-backbone';
import { tuning } from './tuning';
import { prepareProcessStarts } from './video/process';
import { BF16_EMULATED_WARNING, cpuBf16 } from './backend';
import { ResolvedDistributed, distributedError, rankDevice, resolveDistributed } from './distributed';
import type { FeatureStoreOption } from './features/types';
import { FeatureContext, ModelFeatures, checkFeatureStoreOption, storedEmbeddings, storedProbabilities } from './features/use';
import { ExtractOptions, ExtractReport, checkExtract, extractShard } from './features/extract';

export type { Prediction } from './metrics';

export interface ModelStats {
  /** Frames that went through VGG16 (cached clips do not count). */
  framesEmbedded: number;
  /** Clips whose embeddings came from the cache instead of a decode and the CNN. */
  embeddingCacheHits: number;
  /** Clips held in the embedding cache, and their size in bytes (float32 rows of 4096). */
  embeddingCacheEntries: number;
  embeddingCacheBytes: number;
  /** Video files decoded by this model (ffmpeg runs). */
  videosDecoded: number;
  /**
   * Convolution layers run per path, one per layer per CNN forward: Winograd F(4x4, 3x3) per
   * products kernel, oneDNN with prepacked weights (fp32, or bf16 on a CPU with native bf16), LibTorch's
   * dense path (training, bf16 elsewhere, fp16).
   */
  convolutions: ConvolutionCounts;
  /** Clips whose rows the feature store had, did not have (then computed), and entries this model wrote. */
  featureStoreHits: number;
  featureStoreMisses: number;
  featureStoreWrites: number;
}


let warnedRandomInit = false;
let warnedEmulatedBf16 = false;

function disposedError(): VideoRNNError {
  return new VideoRNNError('E_DISPOSED', 'this model has been disposed');
}

function asInputs(input: VideoInput | VideoInput[]): VideoInput[] {
  const inputs = Array.isArray(input) ? input : [input];
  if (inputs.length === 0) throw invalidArgument('input', 'at least one path or Clip', input);
  return inputs;
}

export class VideoRNN {
  readonly config: ModelConfig;
  readonly device: string;
  private native: NativeModel | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Calls whose work has started and not finished (0 or 1: the queue runs one at a time). */
  private running = 0;
  private decoded = 0;
  private pending = 0; // calls queued or running
  private group: ResolvedDistributed | undefined;
  private readonly backboneState = new ModelBackbone();
  private readonly features: ModelFeatures;

  private constructor(native: NativeModel, config: ModelConfig, device: string, private readonly precision: string,
    featureStore: FeatureStoreOption | undefined) {
    this.native = native;
    this.config = config;
    this.device = device;
    this.features = new ModelFeatures(featureStore);
  }

  static async create(options: VideoRNNOptions): Promise<VideoRNN> {
    const config = resolveConfig(options);
    const backbone = options.backboneWeights === undefined ? undefined : await loadBackbone(checkString('backboneWeights', options.backboneWeights));
    const model = await VideoRNN.build(config, options);
    if (backbone) {
      try {
        await callNative(() => model.live().loadState(toNativeTensors(backbone.tensors), BACKBONE_PREFIX, true));
      } catch (error) {
        model.dispose();
        throw error;
      }
      model.backboneState.reference = backbone.reference;
    } else if (!warnedRandomInit) {
      warnedRandomInit = true;
      process.emitWarning('VideoRNN: no backboneWeights given; VGG16 starts from random weights.', { code: 'VIDEO_RNN_RANDOM_BACKBONE' });
    }
    return model;
  }

  /**
   * A small checkpoint (one that references its backbone) takes the backbone from `backboneWeights`, else
   * from the file it names, in the checkpoint's folder and then in `backbonePath` and VIDEO_RNN_BACKBONE_PATH.
   */
  static async load(path: string, options: Pick<VideoRNNOptions, 'device' | 'precision' | 'threads' | 'cacheMB' | 'featureStore'> & BackboneSource = {}):
    Promise<VideoRNN> {
    if (options.backboneWeights !== undefined) checkString('backboneWeights', options.backboneWeights);
    return withCheckpoint(checkString('path', path), async (index, file) => {
      let config: ModelConfig;
      try {
        config = resolveConfig(index.config as VideoRNNOptions);
      } catch (error) {
        throw new VideoRNNError('E_CHECKPOINT', `${path} has an invalid config: ${(error as Error).message}`, { cause: error });
      }
      // Found and checked before the model is built: a missing or different backbone fails fast.
      const backbone = await checkpointBackbone(path, index, options);
      const model = await VideoRNN.build(config, options);
      try {
        await model.backboneState.load(path, index, file, model.live(), options, backbone);
      } catch (error) {
        model.dispose();
        throw error;
      }
      return model;
    });
  }

  private static async build(config: ModelConfig, options: Partial<VideoRNNOptions>): Promise<VideoRNN> {
    const info = addon().backendInfo();
    const backend = resolveBackend(rankDevice(options.device, info.cuda), options.precision, { available: info.cuda, devices: info.cudaDevices });
    if (backend.precision === 'bf16' && backend.device === 'cpu' && cpuBf16().native === false && !warnedEmulatedBf16) {
      warnedEmulatedBf16 = true;
      process.emitWarning(BF16_EMULATED_WARNING, { code: 'VIDEO_RNN_BF16_EMULATED' });
    }
    const cacheMB = options.cacheMB === undefined ? 1024 : checkInteger('cacheMB', options.cacheMB, 0, 1 << 24);
    const featureStore = checkFeatureStoreOption(options.featureStore);
    // Before the weights exist: the helper that starts ffmpeg is forked from a small process.
    prepareProcessStarts();
    const native = await callNative(() => addon().createModel({
      classes: config.classes.length,
      hiddenSize: config.hiddenSize,
      numLayers: config.numLayers,
      bidirectional: config.bidirectional,
      headSize: config.headSize,
      dropout: config.dropout,
      device: backend.device,
      precision: backend.precision,
      seed: options.seed === undefined ? -1 : checkInteger('seed', options.seed, 0, 2 ** 52),
      threads: options.threads === undefined ? 0 : checkInteger('threads', options.threads, 1, 1024),
      cacheBytes: cacheMB * 1024 * 1024,
      chunkFrames: tuning().chunkFrames,
      hugePages: tuning().hugePages,
      prepackedConvolutions: tuning().prepackedConvolutions,
      bf16PrepackedConvolutions: tuning().bf16Prepacked && cpuBf16().native === true,
      winogradConvolutions: tuning().winogradConvolutions,
      pooledFc6: tuning().pooledFc6,
      winogradKernel: tuning().winogradKernel,
    }));
    await callNative(() => native.configureTraining({ trainableBackboneLayers: config.trainableBackboneLayers }));
    return new VideoRNN(native, config, backend.device, backend.precision, featureStore);
  }

  /** The backbone's identity, naming and file name hint (null when it came from no file), and the checkpoint loaded. */
  get backbone(): BackboneInfo {
    return this.backboneState.info;
  }

  get classes(): string[] {
    return [...this.config.classes];
  }

  get stats(): ModelStats {
    const counters = this.native?.counters();
    return {
      framesEmbedded: counters?.framesEmbedded ?? 0,
      embeddingCacheHits: counters?.cacheHits ?? 0,
      embeddingCacheEntries: counters?.cacheEntries ?? 0,
      embeddingCacheBytes: counters?.cacheBytes ?? 0,
      videosDecoded: this.decoded,
      convolutions: { winogradAvx512: 0, winogradAvx2: 0, winogradBaseline: 0, onednn: 0, onednnBf16: 0, dense: 0, ...counters?.convolutions },
      featureStoreHits: this.features.counters.hits,
      featureStoreMisses: this.features.counters.misses,
      featureStoreWrites: this.features.counters.writes,
    };
  }

  /**
   * Drops every cached embedding of this model. When no call is running that happens at once; otherwise
   * after the calls already queued have finished, since a running epoch relies on the entries it found.
   */
  clearCache(): void {
    const native = this.live();
    if (this.pending === 0) {
      native.clearCache();
      return;
    }
    this.tail = this.tail.then(() => this.native?.clearCache());
  }

  /**
   * Frees the weights: now when the model is idle, else as soon as the call running now has finished
   * (every batch of it). Calls that have not started reject with E_DISPOSED.
   */
  dispose(): void {
    const native = this.native;
    if (!native) return;
    this.native = undefined;
    if (this.running === 0) native.dispose();
    else void this.tail.then(() => native.dispose());
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private live(): NativeModel {
    if (!this.native) throw disposedError();
    return this.native;
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (!this.native) return Promise.reject(disposedError());
    this.pending += 1;
    const result = this.tail.then(async () => {
      if (!this.native) throw disposedError();
      this.running += 1;
      try {
        return await work();
      } finally {
        this.running -= 1;
      }
    }).finally(() => { this.pending -= 1; });
    this.tail = result.catch(() => undefined);
    return result;
  }

  private decodeSpec(signal?: AbortSignal): DecodeSpec {
    return { frameSize: this.config.frameSize, sampling: this.config.sampling, signal, onDecoded: () => { this.decoded += 1; } };
  }

  private host(): TrainingHost {
    const native = this.live();
    return { native, config: this.config, decode: (signal) => this.decodeSpec(signal),
      save: (path, embedBackbone) => this.backboneState.save(path, native, this.config, embedBackbone),
      load: (path) => withCheckpoint(path, (index, file) => this.backboneState.load(path, index, file, native)),
      markTrained: (layers) => this.backboneState.markTrained(layers),
      group: this.group, features: (option, frozen) => this.featureContext(option, frozen) };
  }

  /** The feature store a call uses (its option, else the model's), keyed by this backbone and precision. */
  private featureContext(option: FeatureStoreOption | undefined, frozen = true): Promise<FeatureContext | undefined> {
    return this.features.context(this.live(), this.backboneState.info, this.config, this.precision, option, frozen);
  }

  /**
   * Writes the model to one .safetensors file. Built from a backbone weights file, the model is saved
   * small: the LSTM, the head and the backbone layers it trained, with the rest referenced by the
   * backbone's identity; `embedBackbone: true` writes the whole backbone too (a self-contained file).
   */
  async save(path: string, options: { embedBackbone?: boolean } = {}): Promise<void> {
    checkString('path', path);
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
    const embed = options.embedBackbone ?? false;
    if (typeof embed !== 'boolean') throw invalidArgument('embedBackbone', 'a boolean', embed);
    return this.enqueue(() => this.backboneState.save(path, this.live(), this.config, embed));
  }

  /**
   * Writes the backbone alone as VGG16 weights (torchvision names, safetensors). A model created with
   * this file as `backboneWeights` saves small checkpoints that reference it.
   */
  async saveBackbone(path: string): Promise<void> {
    checkString('path', path);
    return this.enqueue(async () => {
      const native = this.live();
      const rest = native.shapes().map((entry) => entry.name).filter((name) => !name.startsWith(BACKBONE_PREFIX));
      const tensors = await callNative(() => native.getState(rest));
      const backbone = tensors.filter((tensor) => tensor.name.startsWith(BACKBONE_PREFIX))
        .map((tensor) => [tensor.name.slice(BACKBONE_PREFIX.length), { shape: tensor.shape, data: tensor.data }] as const);
      await writeSafetensors(path, new Map(backbone), { format: 'pt' });
    });
  }

  async predict(input: VideoInput | VideoInput[], options: { topK?: number; batchSize?: number; featureStore?: FeatureStoreOption } = {}):
    Promise<Prediction[]> {
    const inputs = asInputs(input);
    const topK = checkInteger('topK', options.topK ?? 5, 1, this.config.classes.length * 1000);
    const batchSize = checkInteger('batchSize', options.batchSize ?? 8, 1, 1024);
    const option = checkFeatureStoreOption(options.featureStore);
    return this.enqueue(async () => {
      const native = this.live();
      const features = await this.featureContext(option);
      const probabilities = features ? await storedProbabilities(native, features, inputs, batchSize, this.decodeSpec()) : await this.forEachBatch(inputs, batchSize, (clips) => native.predict(clips.map((clip) => nativeClip(clip))));
      return probabilities.map((row) => prediction(this.config.classes, row, topK));
    });
  }

  /** fc7 per frame of each input, in input order. Clips of different sizes are embedded in separate batches, as in predict. */
  async embed(input: VideoInput | VideoInput[], options: { featureStore?: FeatureStoreOption } = {}): Promise<Float32Array[]> {
    const inputs = asInputs(input);
    const option = checkFeatureStoreOption(options?.featureStore);
    return this.enqueue(async () => {
      const native = this.live();
      const spec = this.decodeSpec();
      const features = await this.featureContext(option);
      if (features) return storedEmbeddings(native, features, inputs, spec);
      const out: Float32Array[] = new Array(inputs.length);
      const positions = inputs.map((_, index) => index);
      await pipelined(chunk(positions, 8),
        (batch) => Promise.all(batch.map(async (position) => ({ position, clip: await toClip(inputs[position], spec, `input[${position}]`) }))),
        async (decoded) => {
          for (const group of groupBySize(decoded)) {
            const rows = await callNative(() => native.embed(group.map((item) => nativeClip(item.clip))));
            group.forEach((item, index) => { out[item.position] = rows[index]; });
          }
        });
      return out;
    });
  }

  async evaluate(data: Dataset, options: { batchSize?: number; signal?: AbortSignal; onProgress?: (event: ProgressEvent) => void;
    featureStore?: FeatureStoreOption } = {}): Promise<EvalReport> {
    const batchSize = checkInteger('batchSize', options.batchSize ?? 8, 1, 1024);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw invalidArgument('onProgress', 'a function', options.onProgress);
    }
    const option = checkFeatureStoreOption(options.featureStore);
    return this.enqueue(async () => evaluateDataset(this.host(), data, { batchSize, signal: options.signal, cacheEmbeddings: true,
      features: await this.featureContext(option, this.config.trainableBackboneLayers === 0), onProgress: options.onProgress, phase: 'evaluate' }));
  }

  /**
   * Fills the feature store with every sample's fc7 rows (entries already there are skipped), so later
   * runs in any process read them instead of decoding and running the CNN. In a group each rank takes
   * its own shard and the counts are the group's.
   */
  async extract(data: Dataset, options: ExtractOptions = {}): Promise<ExtractReport> {
    const checked = checkExtract(data, options);
    const group = resolveDistributed(options.distributed);
    return this.enqueue(async () => {
      await this.joinGroup(group);
      const native = this.live();
      return extractShard(native, await this.featureContext(checked.featureStore), data, this.group, checked, this.decodeSpec(options.signal));
    });
  }

  async train(data: Dataset, options: TrainOptions = {}): Promise<TrainReport> {
    const group = resolveDistributed(options?.distributed);
    return this.enqueue(async () => {
      await this.joinGroup(group);
      return runTraining(this.host(), data, options, this.config.trainableBackboneLayers);
    });
  }

  /** Joins a data-parallel group once; a model stays in its group until it is disposed. */
  private async joinGroup(group: ResolvedDistributed | undefined): Promise<void> {
    if (!group) return;
    if (this.group) {
      const same = (Object.keys(group) as (keyof ResolvedDistributed)[]).every((key) => group[key] === this.group![key]);
      if (!same) throw new VideoRNNError('E_INVALID_ARGUMENT', 'this model is already in a different process group');
      return;
    }
    try {
      await callNative(() => this.live().joinGroup(group));
    } catch (error) {
      const mapped = distributedError(error, group);
      throw mapped instanceof VideoRNNError && mapped.code === 'E_NATIVE'
        ? new VideoRNNError('E_DISTRIBUTED', `rank ${group.rank} could not join the group: ${mapped.message}`, { cause: error })
        : mapped;
    }
    await this.backboneState.checkSameOverRanks((values) => callNative(() => this.live().sumOverRanks(values)), group.worldSize);
    this.group = group;
  }

  /** Trains with the top `trainableBackboneLayers` VGG16 layers unfrozen, at their own learning rate. */
  async fineTune(data: Dataset, options: FineTuneOptions): Promise<TrainReport> {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object with trainableBackboneLayers', options);
    const group = resolveDistributed(options.distributed);
    return this.enqueue(async () => {
      await this.joinGroup(group);
      return runTraining(this.host(), data, options, options.trainableBackboneLayers);
    });
  }

  /** Decodes and runs batches of same-sized clips; returns one probability row per input, in input order. */
  private async forEachBatch(inputs: VideoInput[], batchSize: number,
    run: (clips: Clip[]) => Promise<{ probabilities: Float32Array; classes: number }>): Promise<Float32Array[]> {
    const spec = this.decodeSpec();
    const rows: Float32Array[] = new Array(inputs.length);
    const positions = inputs.map((_, index) => index);
    await pipelined(chunk(positions, batchSize),
      (batch) => Promise.all(batch.map(async (position) => ({ position, clip: await toClip(inputs[position], spec, `input[${position}]`) }))),
      async (decoded) => {
        for (const group of groupBySize(decoded)) {
          const result = await callNative(() => run(group.map((item) => item.clip)));
          group.forEach((item, row) => { rows[item.position] = result.probabilities.slice(row * result.classes, (row + 1) * result.classes); });
        }
      });
    return rows;
  }
}
