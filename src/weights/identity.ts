// The identity of a VGG16 backbone: one definition, used by checkpoints (which reference the frozen
// backbone instead of holding it) and by anything else keyed by backbone.
import { createHash } from 'node:crypto';
import type { HostTensor } from '../clip';
import { VGG16_BACKBONE_TENSORS } from './backbone';
import { HOST_IS_LITTLE_ENDIAN } from './dtype';

/** How the tensors were named in the file they came from: torchvision's, or timm's vgg16.tv_in1k. */
export type BackboneNaming = 'torchvision' | 'timm';

/** What a checkpoint records about the backbone it was built from. */
export interface BackboneReference {
  /** backboneIdentity() of the weights, 64 hex digits. */
  identity: string;
  naming: BackboneNaming;
  /** The name (not the path) of the file the weights were read from, where loading looks first. */
  hint: string;
}

// Bumped only if the canonical form below ever changes; it is part of every hash.
const IDENTITY_DOMAIN = 'video-rnn vgg16 backbone identity 1\n';

function littleEndianBytes(data: Float32Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return bytes;
  const copy = new Uint8Array(bytes);
  for (let start = 0; start < copy.length; start += 4) copy.subarray(start, start + 4).reverse();
  return copy;
}

/**
 * SHA-256 over the canonical backbone tensors: for each of VGG16_BACKBONE_TENSORS in that order
 * (torchvision names and shapes, as the weights loader maps them), the line `name F32 d0,d1,...`
 * and then the values as little-endian float32. So a legacy .pth, a zip .pth and a safetensors file
 * of the same weights, with torchvision's or timm's names, have one identity; the file's own bytes
 * (pickle layout, header order, fc8) do not count. `tensors` is keyed by torchvision name.
 */
export function backboneIdentity(tensors: ReadonlyMap<string, HostTensor>): string {
  const hash = createHash('sha256');
  hash.update(IDENTITY_DOMAIN);
  for (const spec of VGG16_BACKBONE_TENSORS) {
    const tensor = tensors.get(spec.name);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (!tensor || tensor.data.length !== count) throw new RangeError(`backbone tensor ${spec.name} is missing or has the wrong size`);
    hash.update(`${spec.name} F32 ${spec.shape.join(',')}\n`);
    hash.update(littleEndianBytes(tensor.data));
  }
  return hash.digest('hex');
}

export function isIdentity(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}
