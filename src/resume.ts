// Resuming a stopped or crashed run. Beside each checkpoint `<model>` the training loop writes
// `<model>.state`: a safetensors file with the optimiser's per-parameter state (Adam's moments, SGD's
// momentum buffers) and torch's CPU generator, and __metadata__ with the epoch reached, the shuffle
// position, the step counts and the training settings. The model file stays the plain checkpoint (small
// when the model references its backbone, so the digest below reads a few MB, not 530).
import { createHash } from 'node:crypto';
import { readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { toNativeTensors, toTensorMap } from './checkpoint';
import { VideoRNNError } from './errors';
import type { NativeModel, NativeTensor } from './native';
import { callNative } from './native';
import { readSafetensors, writeSafetensors } from './weights';

export const STATE_FORMAT = 'video-rnn-training-state';
export const STATE_VERSION = '1';
const GENERATOR = 'torch.cpu_generator';

/** The settings a resumed run takes from the state, so that it continues the same run. */
export interface ResumableSettings {
  optimizer: 'adam' | 'sgd';
  learningRate: number;
  backboneLearningRate: number;
  momentum: number;
  weightDecay: number;
  trainableBackboneLayers: number;
  batchSize: number;
  shuffle: boolean;
  seed: number;
}

export interface TrainingState {
  /** Epochs completed; the resumed run starts at the next one. */
  epoch: number;
  /** Shuffles of the epoch order done so far from `seed` (the shuffle generator's position). */
  shuffles: number;
  /** Ranks that trained; another world size gives other batches. */
  worldSize: number;
  settings: ResumableSettings;
}

/** A state read back: what the optimiser gets once it is configured with the state's settings. */
export interface LoadedState extends TrainingState {
  steps: Record<string, number>;
  generator?: Float32Array;
  optimizerTensors: NativeTensor[];
}

export function statePath(modelPath: string): string {
  return `${modelPath}.state`;
}

async function fileDigest(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/**
 * Saves a checkpoint and its state as one step, on every rank of a group at once. Each writer (one
 * per machine) writes both files under temporary names (saveModel is given the path to use), then
 * all ranks meet in `barrier`, then the writers rename both files into place. A machine that dies
 * while writing, which takes most of the time of a save, stops the others at the barrier before any
 * rename, so every machine keeps the same epoch. The state names the model file's digest, and
 * loading refuses a pair from two different saves.
 */
export async function saveWithState(native: NativeModel, modelPath: string, writer: boolean,
  saveModel: (path: string) => Promise<void>, barrier: () => Promise<void>, state: TrainingState): Promise<void> {
  const target = statePath(modelPath);
  const pendingModel = join(dirname(modelPath), `.${basename(modelPath)}.${process.pid}.pending`);
  const pendingState = join(dirname(target), `.${basename(target)}.${process.pid}.pending`);
  try {
    if (writer) {
      const optimizer = await callNative(() => native.getOptimizerState());
      const tensors = toTensorMap(optimizer.tensors);
      tensors.set(GENERATOR, { shape: [optimizer.generator.length], data: optimizer.generator });
      await saveModel(pendingModel);
      await writeSafetensors(pendingState, tensors, {
        format: STATE_FORMAT, version: STATE_VERSION, model: await fileDigest(pendingModel),
        state: JSON.stringify({ ...state, steps: optimizer.steps }),
      });
    }
    await barrier();
    if (writer) {
      await rename(pendingState, target);
      await rename(pendingModel, modelPath);
    }
  } catch (error) {
    await unlink(pendingModel).catch(() => undefined);
    await unlink(pendingState).catch(() => undefined);
    if (error instanceof VideoRNNError) throw error;
    throw new VideoRNNError('E_CHECKPOINT', `cannot write ${modelPath} and ${target}: ${(error as Error).message}`, { cause: error });
  }
}

function stateError(path: string, why: string, cause?: unknown): VideoRNNError {
  return new VideoRNNError('E_CHECKPOINT', `cannot resume from ${path}: ${why}`, { cause });
}

/** Loads the model's weights (with `loadModel`), the optimiser state and the generator; returns where the run was. */
export async function loadWithState(modelPath: string, loadModel: (path: string) => Promise<void>): Promise<LoadedState> {
  const file = statePath(modelPath);
  let content;
  try {
    content = await readSafetensors(file);
  } catch (error) {
    throw stateError(modelPath, `its training state ${file} cannot be read (${(error as Error).message}); ` +
      'a run saves it with every checkpoint (--checkpoint-every)', error);
  }
  const { metadata, tensors } = content;
  if (metadata.format !== STATE_FORMAT) throw stateError(modelPath, `${file} is not a training state (format ${JSON.stringify(metadata.format)})`);
  if (metadata.version !== STATE_VERSION) throw stateError(modelPath, `${file} has version ${metadata.version}, this version reads ${STATE_VERSION}`);
  let parsed: TrainingState & { steps?: Record<string, number> };
  try {
    parsed = JSON.parse(metadata.state ?? '');
  } catch (error) {
    throw stateError(modelPath, `the metadata of ${file} is not JSON`, error);
  }
  if (!Number.isInteger(parsed?.epoch) || parsed.epoch < 0 || typeof parsed.settings !== 'object' || parsed.settings === null) {
    throw stateError(modelPath, `${file} names no epoch or settings`);
  }
  let digest: string;
  try {
    digest = await fileDigest(modelPath);
  } catch (error) {
    throw stateError(modelPath, `the model file cannot be read (${(error as Error).message})`, error);
  }
  if (digest !== metadata.model) {
    throw stateError(modelPath, `${file} was saved with another version of the model file (the run stopped between the two writes, ` +
      'or the model was replaced); no state matches these weights');
  }
  await loadModel(modelPath);
  const generator = tensors.get(GENERATOR);
  tensors.delete(GENERATOR);
  return { ...parsed, steps: parsed.steps ?? {}, generator: generator?.data, optimizerTensors: toNativeTensors(tensors) };
}

/**
 * In a group every rank must continue from the same epoch: each machine read its own files, and a
 * mismatch (a machine's files from another run or another save) would desynchronise the collectives.
 */
export async function checkSameEpoch(state: LoadedState, sumOverRanks: (values: number[]) => Promise<number[]>,
  worldSize: number): Promise<void> {
  const [sum, squares] = await sumOverRanks([state.epoch, state.epoch * state.epoch]);
  if (sum * sum !== worldSize * squares) {
    throw new VideoRNNError('E_CHECKPOINT', `the ranks resume from different epochs (this one from epoch ${state.epoch}, ` +
      `the mean is ${sum / worldSize}): every machine needs the checkpoint and state of the same save`);
  }
}

/** After the optimiser was configured with the state's settings: its moments, steps and the generator. */
export async function restoreOptimizer(native: NativeModel, state: LoadedState): Promise<void> {
  await callNative(() => native.loadOptimizerState({ tensors: state.optimizerTensors, steps: state.steps,
    generator: state.generator ?? new Float32Array(0) }));
}
