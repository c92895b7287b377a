// Deterministic store entries shared by the feature store tests and their worker processes.
import { featureKey } from '../../dist/index.js';

export const BACKBONE = 'ab'.repeat(32);
export const storeOrigin = { backbone: BACKBONE, frameSize: 32, sampling: { fps: 5 }, precision: 'fp32' };

export function storeKey(index, backbone = BACKBONE) {
  return featureKey({ video: `video-${index}`, frameSize: 32, sampling: { fps: 5 }, backbone, precision: 'fp32' });
}

/** Rows whose every value names the entry and the position (exact in float32 below 2^24). */
export function storeRows(index, frames, dim) {
  const rows = new Float32Array(frames * dim);
  for (let i = 0; i < rows.length; i++) rows[i] = (index * 7919 + i) % 16777216;
  return rows;
}
