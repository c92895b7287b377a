// Validation of VideoRNN.create options and the resolved, serialisable model configuration.
import { ErrorCode, VideoRNNError, checkInteger, checkNumber, invalidArgument } from './errors';
import { MAX_TRAINABLE_BACKBONE_LAYERS } from './constants';
import { checkFrameCount } from './video/sampling';
import type { FeatureStoreOption } from './features/types';

export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;
export type Precision = 'auto' | 'fp32' | 'bf16' | 'fp16';

export interface Sampling {
  fps?: number;
  maxFrames?: number;
  frames?: number;
}

export interface VideoRNNOptions {
  classes: string[];
  backboneWeights?: string;
  trainableBackboneLayers?: number;
  hiddenSize?: number;
  numLayers?: number;
  bidirectional?: boolean;
  headSize?: number;
  dropout?: number;
  frameSize?: number;
  sampling?: Sampling;
  device?: Device;
  precision?: Precision;
  seed?: number;
  /** Intra-op threads; default: the machine's parallelism. */
  threads?: number;
  /** Memory budget of the embedding cache, in MB (default 1024). */
  cacheMB?: number;
  /**
   * A folder (or folder with settings) where fc7 embeddings persist across processes: the default of
   * every call that embeds with a frozen backbone. Not part of the model's config (not saved).
   */
  featureStore?: FeatureStoreOption;
}

/** What a checkpoint stores and a loaded model reports as `model.config`. */
export interface ModelConfig {
  classes: string[];
  trainableBackboneLayers: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  headSize: number;
  dropout: number;
  frameSize: number;
  sampling: Sampling;
  normalization: { mean: number[]; std: number[] };
}

// ImageNet statistics used by torchvision's pretrained VGG16 (torchvision documentation).
export const IMAGENET_NORMALIZATION = Object.freeze({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });

// Upper bounds that refuse absurd requests before anything is allocated.
export const LIMITS = Object.freeze({ frameSize: 1024, hiddenSize: 16384, headSize: 16384, numLayers: 8, classes: 100000, frames: 10000 });

function checkSampling(value: unknown): Sampling {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidArgument('sampling', 'an object', value);
  const raw = value as Record<string, unknown>;
  const sampling: Sampling = {};
  if (raw.fps !== undefined) sampling.fps = checkNumber('sampling.fps', raw.fps, 0.001, 1000);
  if (raw.maxFrames !== undefined) sampling.maxFrames = checkInteger('sampling.maxFrames', raw.maxFrames, 1, LIMITS.frames);
  if (raw.frames !== undefined) sampling.frames = checkInteger('sampling.frames', raw.frames, 1, LIMITS.frames);
  checkFrameCount(sampling, 'sampling.');
  return sampling;
}

function checkClasses(value: unknown): string[] {
  if (!Array.isArray(value) || value.length < 2 || value.length > LIMITS.classes) {
    throw invalidArgument('classes', `an array of 2 to ${LIMITS.classes} label names`, value);
  }
  const seen = new Set<string>();
  for (const label of value) {
    if (typeof label !== 'string' || label.length === 0) throw invalidArgument('classes[]', 'non-empty string', label);
    if (seen.has(label)) throw new VideoRNNError('E_INVALID_ARGUMENT', `classes has the label "${label}" twice`);
    seen.add(label);
  }
  return [...value];
}

function optionalBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgument(name, 'boolean', value);
  return value;
}

export function resolveConfig(options: VideoRNNOptions): ModelConfig {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
  return {
    classes: checkClasses(options.classes),
    trainableBackboneLayers: checkInteger('trainableBackboneLayers', options.trainableBackboneLayers ?? 0, 0, MAX_TRAINABLE_BACKBONE_LAYERS),
    hiddenSize: checkInteger('hiddenSize', options.hiddenSize ?? 2048, 1, LIMITS.hiddenSize),
    numLayers: checkInteger('numLayers', options.numLayers ?? 1, 1, LIMITS.numLayers),
    bidirectional: optionalBoolean('bidirectional', options.bidirectional, true),
    headSize: checkInteger('headSize', options.headSize ?? 256, 1, LIMITS.headSize),
    dropout: checkNumber('dropout', options.dropout ?? 0, 0, 0.99),
    frameSize: checkInteger('frameSize', options.frameSize ?? 224, 32, LIMITS.frameSize),
    sampling: checkSampling(options.sampling),
    normalization: { mean: [...IMAGENET_NORMALIZATION.mean], std: [...IMAGENET_NORMALIZATION.std] },
  };
}

export interface BackendChoice {
  device: string;
  precision: 'fp32' | 'bf16' | 'fp16';
}

/** 'auto' picks CUDA when the LibTorch build has it; 'auto' precision is bf16 on CUDA, fp32 on CPU. */
export function resolveBackend(device: unknown, precision: unknown, cuda: { available: boolean; devices: number }): BackendChoice {
  const wanted = device ?? 'auto';
  if (typeof wanted !== 'string' || !/^(auto|cpu|cuda(:\d+)?)$/.test(wanted)) {
    throw invalidArgument('device', "'auto', 'cpu', 'cuda' or 'cuda:N'", wanted);
  }
  let chosen = wanted === 'auto' ? (cuda.available ? 'cuda' : 'cpu') : wanted;
  if (chosen.startsWith('cuda')) {
    const index = chosen === 'cuda' ? 0 : Number(chosen.slice(5));
    const code: ErrorCode = 'E_CUDA_UNAVAILABLE';
    if (!cuda.available) throw new VideoRNNError(code, `device ${chosen} was asked for, but this LibTorch build has no usable CUDA`);
    if (index >= cuda.devices) throw new VideoRNNError(code, `device ${chosen} was asked for, but there are ${cuda.devices} CUDA devices`);
    chosen = `cuda:${index}`;
  }
  const wantedPrecision = precision ?? 'auto';
  if (!['auto', 'fp32', 'bf16', 'fp16'].includes(wantedPrecision as string)) {
    throw invalidArgument('precision', "'auto', 'fp32', 'bf16' or 'fp16'", wantedPrecision);
  }
  const resolved = wantedPrecision === 'auto' ? (chosen === 'cpu' ? 'fp32' : 'bf16') : wantedPrecision;
  // LibTorch's CPU autocast computes in bfloat16 only; float16 would fail inside the first forward.
  if (resolved === 'fp16' && chosen === 'cpu') {
    throw new VideoRNNError('E_INVALID_ARGUMENT',
      "precision 'fp16' needs a CUDA device (LibTorch's CPU autocast supports bfloat16 only); on the CPU use 'fp32' or 'bf16'");
  }
  return { device: chosen, precision: resolved as BackendChoice['precision'] };
}
