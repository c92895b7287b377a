// A model checkpoint is one .safetensors file: the model's tensors under their module names
// (embedding.*, lstm.*, classifier.*) and __metadata__ {format, version, config}.
import type { TensorMap } from './clip';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from './constants';
import { VideoRNNError } from './errors';
import type { NativeTensor } from './native';
import type { ModelConfig } from './options';
import { readSafetensors, writeSafetensors } from './weights';

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

export async function readCheckpoint(path: string): Promise<{ config: ModelConfig; tensors: TensorMap }> {
  let content;
  try {
    content = await readSafetensors(path);
  } catch (error) {
    // A bad path argument, a missing file or one that cannot be opened is not a broken checkpoint.
    if (error instanceof VideoRNNError && ['E_INVALID_ARGUMENT', 'E_WEIGHTS_NOT_FOUND', 'E_IO'].includes(error.code)) throw error;
    throw checkpointError(path, (error as Error).message, error);
  }
  const { metadata, tensors } = content;
  if (metadata.format !== CHECKPOINT_FORMAT) throw checkpointError(path, `its metadata format is ${JSON.stringify(metadata.format)}`);
  if (metadata.version !== CHECKPOINT_VERSION) throw checkpointError(path, `version ${metadata.version} is not supported`);
  let config: ModelConfig;
  try {
    config = JSON.parse(metadata.config ?? '') as ModelConfig;
  } catch (error) {
    throw checkpointError(path, 'its config is not JSON', error);
  }
  if (typeof config !== 'object' || config === null) throw checkpointError(path, 'its config is not an object');
  return { config, tensors };
}

/** Every tensor the model has must be in the file with the same shape, and nothing else. */
export function checkCheckpointTensors(path: string, tensors: TensorMap, expected: readonly { name: string; shape: number[] }[]): void {
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
