// Keys of the embedding cache. A key names the video itself, never a dataset-relative id: two
// datasets with the same layout (train/left/a.mp4 and test/left/a.mp4) must never share an entry,
// and a file rewritten in place must not keep its old embeddings.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Clip } from './clip';
import type { ModelConfig } from './options';

/** The key of a sample's embeddings, or undefined when it cannot be cached (the decode then reports why). */
export type CacheKeyer = (source: string | Clip) => Promise<string | undefined>;

/**
 * A file is named by its resolved absolute path and by what changes when its content changes: size,
 * modification and status-change times in nanoseconds, device and inode. A Clip in memory is named
 * by a SHA-256 of its bytes and its geometry, hashed on every lookup so that a buffer reused for other
 * frames is never mistaken for the old ones. Both are followed by how files are decoded (frame size,
 * sampling) and the fingerprint of the backbone's weights.
 */
export function cacheKeyer(config: Pick<ModelConfig, 'frameSize' | 'sampling'>, fingerprint: string): CacheKeyer {
  const suffix = `${JSON.stringify({ frameSize: config.frameSize, sampling: config.sampling })}\u0000${fingerprint}`;
  return async (source) => {
    const identity = typeof source === 'string' ? await fileIdentity(source) : clipIdentity(source);
    return identity === undefined ? undefined : `${identity}\u0000${suffix}`;
  };
}

async function fileIdentity(file: string): Promise<string | undefined> {
  const absolute = path.resolve(file);
  let stats: fs.BigIntStats;
  try {
    stats = await fs.promises.stat(absolute, { bigint: true });
  } catch {
    return undefined;
  }
  if (!stats.isFile()) return undefined;
  return `file:${absolute}\u0000size=${stats.size} mtime=${stats.mtimeNs} ctime=${stats.ctimeNs} dev=${stats.dev} ino=${stats.ino}`;
}

function clipIdentity(clip: Clip): string | undefined {
  if (typeof clip !== 'object' || clip === null || !(clip.data instanceof Uint8Array)) return undefined;
  const digest = createHash('sha256').update(clip.data).digest('hex');
  return `clip:${clip.frames}x${clip.height}x${clip.width}\u0000sha256=${digest}`;
}
