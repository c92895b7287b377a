// A model checkpoint is one .safetensors file: the model's tensors under their module names
// (embedding.*, lstm.*, classifier.*) and __metadata__ {format, version, config, backbone}. A model
// built from a backbone weights file is saved small: the LSTM, the head and the backbone tensors that
// were trained; the frozen rest is referenced by the `backbone` metadata (identity, naming, hint).
import { basename } from 'node:path';
import type { TensorMap } from './clip';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CHECKPOINT_VERSIONS } from './constants';
import { VideoRNNError } from './errors';
import { callNative, type NativeModel, type NativeTensor } from './native';
import type { ModelConfig } from './options';
import { VGG16_BACKBONE_TENSORS, writeSafetensors } from './weights';
import { WeightsFile } from './weights/file';
import { type BackboneReference, isIdentity } from './weights/identity';
import { indexSafetensorsFile, type TensorRange } from './weights/safetensors';

export const BACKBONE_PREFIX = 'embedding.';
const BACKBONE_NAMES: ReadonlySet<string> = new Set(VGG16_BACKBONE_TENSORS.map((spec) => spec.name));

/** What a checkpoint says about its backbone (the `backbone` metadata). */
export interface CheckpointBackbone {
  /** The backbone weights file the model was built from. */
  reference: BackboneReference;
  /** Backbone tensors (torchvision names) that were trained and so differ from the reference; the file holds them. */
  trained: string[];
}

export function toTensorMap(tensors: readonly NativeTensor[]): TensorMap {
  return new Map(tensors.map((tensor) => [tensor.name, { shape: tensor.shape, data: tensor.data }]));
}

export function toNativeTensors(tensors: TensorMap): NativeTensor[] {
  return [...tensors].map(([name, tensor]) => ({ name, shape: tensor.shape, data: tensor.data }));
}

/**
 * Written atomically by the safetensors writer: a temp file in the same folder, then a rename.
 * `tensors` is what the file holds (all of them, or the small set); `backbone` is recorded when known.
 */
export async function writeCheckpoint(path: string, tensors: readonly NativeTensor[], config: ModelConfig,
  backbone?: CheckpointBackbone): Promise<void> {
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, config: JSON.stringify(config) };
  if (backbone) {
    metadata.backbone = JSON.stringify({ identity: backbone.reference.identity, naming: backbone.reference.naming,
      hint: backbone.reference.hint, trained: backbone.trained });
  }
  await writeSafetensors(path, toTensorMap(tensors), metadata);
}

function checkpointError(path: string, why: string, cause?: unknown): VideoRNNError {
  return new VideoRNNError('E_CHECKPOINT', `${path} is not a usable video-rnn checkpoint: ${why}`, { cause });
}

export interface CheckpointIndex {
  config: ModelConfig;
  version: string;
  /** Where the file holds each tensor; read by the native side (NativeModel.loadStateFile). */
  ranges: TensorRange[];
  /** The referenced backbone, when the metadata names one (always in a small file). */
  backbone?: CheckpointBackbone;
  /** The file holds the whole backbone; otherwise only `backbone.trained` and the rest must be loaded by reference. */
  selfContained: boolean;
}

/**
 * Opens a checkpoint, checks its header and metadata, and runs `body` with the index while the file
 * stays open: the tensor bytes go from the file straight into the model's native memory, never
 * through JavaScript buffers (a self-contained VGG16 checkpoint is about 530 MB).
 */
export async function withCheckpoint<T>(path: string, body: (index: CheckpointIndex, file: WeightsFile) => Promise<T>): Promise<T> {
  let file: WeightsFile;
  let index: CheckpointIndex;
  try {
    file = await WeightsFile.open(path);
  } catch (error) {
    // A bad path argument, a missing file or one that cannot be opened is not a broken checkpoint.
    if (error instanceof VideoRNNError && ['E_INVALID_ARGUMENT', 'E_WEIGHTS_NOT_FOUND', 'E_IO'].includes(error.code)) throw error;
    throw checkpointError(path, (error as Error).message, error);
  }
  try {
    try {
      const { ranges, metadata } = await indexSafetensorsFile(file);
      index = checkpointIndex(path, metadata, ranges);
    } catch (error) {
      if (error instanceof VideoRNNError && error.code === 'E_CHECKPOINT') throw error;
      throw checkpointError(path, (error as Error).message, error);
    }
    return await body(index, file);
  } finally {
    await file.close();
  }
}

function backboneMetadata(path: string, text: string): CheckpointBackbone {
  let value: { identity?: unknown; naming?: unknown; hint?: unknown; trained?: unknown };
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw checkpointError(path, 'its backbone metadata is not JSON', error);
  }
  const { identity, naming, hint, trained } = value ?? {};
  if (!isIdentity(identity)) throw checkpointError(path, 'its backbone identity is not 64 hex digits');
  if (naming !== 'torchvision' && naming !== 'timm') throw checkpointError(path, `its backbone naming ${JSON.stringify(naming)} is unknown`);
  // A file name only: a hint never points outside the folders that loading searches.
  if (typeof hint !== 'string' || hint.length === 0 || basename(hint) !== hint || hint === '.' || hint === '..' || hint.includes('\\')) {
    throw checkpointError(path, `its backbone hint ${JSON.stringify(hint)} is not a file name`);
  }
  if (!Array.isArray(trained) || trained.some((name) => typeof name !== 'string' || !BACKBONE_NAMES.has(name)) ||
      new Set(trained).size !== trained.length) {
    throw checkpointError(path, 'its list of trained backbone tensors is not a list of VGG16 tensor names');
  }
  return { reference: { identity, naming, hint }, trained: trained as string[] };
}

function checkpointIndex(path: string, metadata: Record<string, string>, ranges: TensorRange[]): CheckpointIndex {
  if (metadata.format !== CHECKPOINT_FORMAT) throw checkpointError(path, `its metadata format is ${JSON.stringify(metadata.format)}`);
  if (!CHECKPOINT_VERSIONS.includes(metadata.version)) throw checkpointError(path, `version ${metadata.version} is not supported`);
  let config: ModelConfig;
  try {
    config = JSON.parse(metadata.config ?? '') as ModelConfig;
  } catch (error) {
    throw checkpointError(path, 'its config is not JSON', error);
  }
  if (typeof config !== 'object' || config === null) throw checkpointError(path, 'its config is not an object');
  const backbone = metadata.version !== '1' && metadata.backbone !== undefined ? backboneMetadata(path, metadata.backbone) : undefined;
  const held = ranges.filter((range) => range.name.startsWith(BACKBONE_PREFIX)).map((range) => range.name.slice(BACKBONE_PREFIX.length));
  const selfContained = [...BACKBONE_NAMES].every((name) => held.includes(name));
  if (!selfContained) {
    // Everything not in the file comes from the reference, so the file holds exactly the trained tensors.
    if (!backbone) throw checkpointError(path, 'it holds part of the backbone and names no backbone to take the rest from');
    const trained = new Set(backbone.trained);
    const stray = held.find((name) => !trained.has(name));
    const missing = backbone.trained.find((name) => !held.includes(name));
    if (stray !== undefined) throw checkpointError(path, `it holds backbone tensor ${stray}, which its metadata does not list as trained`);
    if (missing !== undefined) throw checkpointError(path, `trained backbone tensor ${BACKBONE_PREFIX}${missing} is missing`);
  }
  return { config, version: metadata.version, ranges, backbone, selfContained };
}

/**
 * Reads the checked tensors into the model; a file that changed under us is E_CHECKPOINT. A small
 * checkpoint's file holds only part of the backbone: the caller loads the referenced backbone first.
 */
export async function loadCheckpointTensors(path: string, index: CheckpointIndex, file: WeightsFile, native: NativeModel): Promise<void> {
  const held = new Set(index.ranges.map((range) => range.name));
  const expected = native.shapes().filter((entry) => index.selfContained || !entry.name.startsWith(BACKBONE_PREFIX) || held.has(entry.name));
  checkCheckpointTensors(path, new Map(index.ranges.map((range) => [range.name, range])), expected);
  try {
    await callNative(() => native.loadStateFile(file.fd, path, index.ranges, '', index.selfContained));
  } catch (error) {
    if (error instanceof VideoRNNError && error.code !== 'E_NATIVE') throw error;
    throw checkpointError(path, (error as Error).message, error);
  }
}

/** Every tensor expected must be in the file with the same shape, and nothing else. */
export function checkCheckpointTensors(path: string, tensors: ReadonlyMap<string, { shape: readonly number[] }>, expected: readonly { name: string; shape: number[] }[]): void {
  const known = new Set(expected.map((entry) => entry.name));
  for (const { name, shape } of expected) {
    const tensor = tensors.get(name);
    if (!tensor) throw checkpointError(path, `tensor ${name} is missing`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((size, index) => size !== shape[index])) {
      throw checkpointError(path, `tensor ${name} has shape [${tensor.shape}] but the model needs [${shape}]`);
    }
  }
  for (const name of tensors.keys()) if (!known.has(name)) throw checkpointError(path, `unknown tensor ${name}`);
}
