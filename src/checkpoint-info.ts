// What a checkpoint file is, without building a model: `video-rnn info MODEL`.
import { stat } from 'node:fs/promises';
import { BACKBONE_PREFIX, withCheckpoint } from './checkpoint';
import type { ModelConfig } from './options';
import { readSafetensors } from './weights';
import { type BackboneNaming, backboneIdentity } from './weights/identity';

export interface CheckpointInfo {
  path: string;
  bytes: number;
  version: number;
  config: ModelConfig;
  /** The file holds the whole backbone; otherwise it references it (and holds only the trained tensors). */
  selfContained: boolean;
  backbone: {
    identity: string;
    /** 'metadata' when the file records it; 'computed' from the backbone tensors a file without a reference holds. */
    identityFrom: 'metadata' | 'computed';
    naming: BackboneNaming | null;
    hint: string | null;
    trainedTensors: string[];
  };
}

export async function inspectCheckpoint(path: string): Promise<CheckpointInfo> {
  const index = await withCheckpoint(path, async (found) => found);
  const bytes = (await stat(path)).size;
  let backbone: CheckpointInfo['backbone'];
  if (index.backbone) {
    const { reference, trained } = index.backbone;
    backbone = { identity: reference.identity, identityFrom: 'metadata', naming: reference.naming, hint: reference.hint, trainedTensors: trained };
  } else {
    // No reference (a version-1 file, or a model with a random backbone): the identity of the weights it holds.
    const { tensors } = await readSafetensors(path);
    const held = new Map([...tensors].filter(([name]) => name.startsWith(BACKBONE_PREFIX))
      .map(([name, tensor]) => [name.slice(BACKBONE_PREFIX.length), tensor]));
    backbone = { identity: backboneIdentity(held), identityFrom: 'computed', naming: null, hint: null, trainedTensors: [] };
  }
  return { path, bytes, version: Number(index.version), config: index.config, selfContained: index.selfContained, backbone };
}
