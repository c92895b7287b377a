// What a model knows about its backbone, and how it saves and loads checkpoints with it: a model built
// from a weights file saves small files that reference that file by identity; one that is not (random
// initialisation, a version-1 file) saves whole ones.
import { BACKBONE_PREFIX, CheckpointIndex, loadCheckpointTensors, toNativeTensors, writeCheckpoint } from './checkpoint';
import type { CheckpointBackbone } from './checkpoint';
import { MAX_TRAINABLE_BACKBONE_LAYERS } from './constants';
import { VideoRNNError, checkInteger } from './errors';
import { callNative, type NativeModel } from './native';
import type { ModelConfig } from './options';
import { VGG16_BACKBONE_TENSORS } from './weights';
import type { WeightsFile } from './weights/file';
import type { BackboneNaming, BackboneReference } from './weights/identity';
import { type LoadedBackbone, resolveBackbone } from './weights/reference';

/** The backbone a small checkpoint needs, found and checked (before a model is built for it). */
export async function checkpointBackbone(path: string, index: CheckpointIndex, source: BackboneSource): Promise<LoadedBackbone | undefined> {
  return index.selfContained ? undefined : resolveBackbone(path, index.backbone!.reference, source);
}

/** Where a small checkpoint's backbone may come from (VideoRNN.load's options). */
export interface BackboneSource {
  /** The backbone's weights file; it must have the identity the checkpoint names. */
  backboneWeights?: string;
  /** Folders searched for the file the checkpoint names, after the checkpoint's own (also VIDEO_RNN_BACKBONE_PATH). */
  backbonePath?: string | string[];
}

/** model.backbone: what the model's backbone is and where it came from. */
export interface BackboneInfo {
  /** Identity of the backbone weights file the model was built from (or that its checkpoint references); null if none. */
  identity: string | null;
  naming: BackboneNaming | null;
  /** File name of those weights, where loading a small checkpoint looks for them. */
  hint: string | null;
  /** Backbone tensors trained since, which a checkpoint stores (torchvision names). */
  trainedTensors: string[];
  /** The checkpoint the model was loaded from, and whether it held the whole backbone. */
  checkpoint: { path: string; version: number; selfContained: boolean } | null;
}

// The top `layers` weight layers of the backbone, as trainableBackboneLayers counts them.
function topLayerTensors(layers: number): string[] {
  return layers === 0 ? [] : VGG16_BACKBONE_TENSORS.slice(-2 * layers).map((spec) => spec.name);
}

export class ModelBackbone {
  reference: BackboneReference | undefined;
  private trained = new Set<string>();
  private source: BackboneInfo['checkpoint'] = null;

  static fromWeights(backbone: LoadedBackbone | undefined): ModelBackbone {
    const state = new ModelBackbone();
    state.reference = backbone?.reference;
    return state;
  }

  /** Called as training starts with `layers` backbone layers trainable: a checkpoint must store them from then on. */
  markTrained(layers: number): void {
    checkInteger('trainableBackboneLayers', layers, 0, MAX_TRAINABLE_BACKBONE_LAYERS);
    for (const name of topLayerTensors(layers)) this.trained.add(name);
  }

  /**
   * In a data-parallel group rank 0's weights are broadcast, so every rank must reference the same
   * backbone, or a rank would save rank 0's weights under its own (other) backbone's identity. Three
   * 16-bit pieces of the identity (0 for none) and their squares, summed over the ranks, are equal
   * for all ranks exactly when every rank has the same pieces.
   */
  async checkSameOverRanks(sumOverRanks: (values: number[]) => Promise<number[]>, worldSize: number): Promise<void> {
    const identity = this.reference?.identity;
    const pieces = [0, 4, 8].map((start) => (identity === undefined ? 0 : parseInt(identity.slice(start, start + 4), 16) + 1));
    const sums = await sumOverRanks(pieces.flatMap((piece) => [piece, piece * piece]));
    const same = pieces.every((_, index) => sums[2 * index] * sums[2 * index] === worldSize * sums[2 * index + 1]);
    if (!same) {
      throw new VideoRNNError('E_DISTRIBUTED', `the ranks were built from different backbones (this one from ${identity === undefined
        ? 'no weights file' : `backbone ${identity}, ${this.reference!.hint}`}): give every rank the same backboneWeights`);
    }
  }

  get info(): BackboneInfo {
    return { identity: this.reference?.identity ?? null, naming: this.reference?.naming ?? null, hint: this.reference?.hint ?? null,
      trainedTensors: this.trainedNames(), checkpoint: this.source && { ...this.source } };
  }

  private trainedNames(): string[] {
    return VGG16_BACKBONE_TENSORS.map((spec) => spec.name).filter((name) => this.trained.has(name));
  }

  private metadata(): CheckpointBackbone | undefined {
    return this.reference && { reference: { ...this.reference }, trained: this.trainedNames() };
  }

  /**
   * Saves the model: small (LSTM, head, trained backbone tensors) when the backbone came from a file,
   * whole when it did not or when `embedBackbone` asks for a self-contained file.
   */
  async save(path: string, native: NativeModel, config: ModelConfig, embedBackbone: boolean): Promise<void> {
    const small = !embedBackbone && this.reference !== undefined;
    const skip = small ? VGG16_BACKBONE_TENSORS.filter((spec) => !this.trained.has(spec.name)).map((spec) => BACKBONE_PREFIX + spec.name) : [];
    const tensors = await callNative(() => native.getState(skip));
    await writeCheckpoint(path, tensors, config, this.metadata());
  }

  /**
   * Loads a checkpoint into `native`. A small one needs its backbone underneath: the model's own when
   * it is the one referenced and untouched outside the tensors the file holds, else the file found by
   * `source` (or the checkpoint's hint), checked by identity.
   */
  async load(path: string, index: CheckpointIndex, file: WeightsFile, native: NativeModel, source: BackboneSource = {},
    resolved?: LoadedBackbone): Promise<void> {
    if (!index.selfContained) {
      const wanted = index.backbone!;
      const held = new Set(wanted.trained);
      const reusable = this.reference?.identity === wanted.reference.identity && [...this.trained].every((name) => held.has(name));
      if (resolved || !reusable || source.backboneWeights !== undefined) {
        const backbone = resolved ?? await resolveBackbone(path, wanted.reference, source);
        await callNative(() => native.loadState(toNativeTensors(backbone.tensors), BACKBONE_PREFIX, true));
      }
    }
    await loadCheckpointTensors(path, index, file, native);
    this.reference = index.backbone?.reference;
    this.trained = new Set(index.backbone?.trained ?? []);
    this.source = { path, version: Number(index.version), selfContained: index.selfContained };
  }
}
