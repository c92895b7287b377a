// A model checkpoint is one .safetensors file: the model's tensors under their module names
// (embedding.*, lstm.*, classifier.*) and __metadata__ {format, version, config}.
import type { TensorMap } from './clip';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from './constants';
import { VideoRNNError } from './errors';
import { callNative, type NativeModel, type NativeTensor } from './native';
import type { ModelConfig } from './options';
import { writeSafetensors } from './weights';
import { WeightsFile } from './weights/file';
import { indexSafetensorsFile, type TensorRange } from './weights/safetensors';

export function toTensorMap(tensors: readonly NativeTensor[]): TensorMap {
  return new Map(tensors.map((tensor) => [tensor.name, { shape: tensor.shape, data: tensor.data }]));
}

export function toNativeTensors(tensors: TensorMap): NativeTensor[] {
  return [...tensors].map(([name, tensor]) => ({ name, shape: tensor.shape, data: tensor.data }));
}

/** Written atomically by the safetensors writer: a temp file in the same folder, then a rename. */
export async function writeCheckpoint(path: string, tensors: readonly NativeTensor[], config: ModelConfig): Promise<void> {
  await writeSafetensors(path, toTensorMap(tensors), {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    config: JSON.stringify(config),
  });
}

function checkpointError(path: string, why: string, cause?: unknown): VideoRNNError {
  return new VideoRNNError('E_CHECKPOINT', `${path} is not a usable video-rnn checkpoint: ${why}`, { cause });
}

export interface CheckpointIndex {
  config: ModelConfig;
  /** Where the file holds each tensor; read by the native side (NativeModel.loadStateFile). */
  ranges: TensorRange[];
}

/**
 * Opens a checkpoint, checks its header and metadata, and runs `body` with the index while the file
 * stays open: the tensor bytes go from the file straight into the model's native memory, never
 * through JavaScript buffers (a VGG16 checkpoint is about 530 MB).
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
      index = { config: checkpointConfig(path, metadata), ranges };
    } catch (error) {
      if (error instanceof VideoRNNError && error.code === 'E_CHECKPOINT') throw error;
      throw checkpointError(path, (error as Error).message, error);
    }
    return await body(index, file);
  } finally {
    await file.close();
  }
}

function checkpointConfig(path: string, metadata: Record<string, string>): ModelConfig {
  if (metadata.format !== CHECKPOINT_FORMAT) throw checkpointError(path, `its metadata format is ${JSON.stringify(metadata.format)}`);
  if (metadata.version !== CHECKPOINT_VERSION) throw checkpointError(path, `version ${metadata.version} is not supported`);
  let config: ModelConfig;
  try {
    config = JSON.parse(metadata.config ?? '') as ModelConfig;
  } catch (error) {
    throw checkpointError(path, 'its config is not JSON', error);
  }
  if (typeof config !== 'object' || config === null) throw checkpointError(path, 'its config is not an object');
  return config;
}

/** Reads the checked tensors into the model; a file that changed under us is E_CHECKPOINT. */
export async function loadCheckpointTensors(path: string, index: CheckpointIndex, file: WeightsFile, native: NativeModel): Promise<void> {
  checkCheckpointTensors(path, new Map(index.ranges.map((range) => [range.name, range])), native.shapes());
  try {
    await callNative(() => native.loadStateFile(file.fd, path, index.ranges, '', true));
  } catch (error) {
    if (error instanceof VideoRNNError && error.code !== 'E_NATIVE') throw error;
    throw checkpointError(path, (error as Error).message, error);
  }
}

/** Every tensor the model has must be in the file with the same shape, and nothing else. */
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
