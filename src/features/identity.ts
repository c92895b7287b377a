// Names of store entries. A key is built from the video's content (its SHA-256), never from its path
// or inode: machines that mount a dataset at different paths share entries, and a copied dataset
// keeps them. What changes the rows (frame size, sampling, backbone, precision) is part of the key.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError, invalidArgument } from '../errors';

/** JSON with object keys sorted at every level, so equal values give equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, item]) => `${JSON.stringify(name)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The store key (64 hex digits) of one video's rows. `video` is a content identity, such as videoDigest's sha256. */
export function featureKey(parts: { video: string; frameSize: number; sampling: object; backbone: string; precision: string }): string {
  if (parts === null || typeof parts !== 'object') throw invalidArgument('parts', 'an object', parts);
  for (const name of ['video', 'backbone', 'precision'] as const) {
    if (typeof parts[name] !== 'string' || parts[name].length === 0) throw invalidArgument(name, 'non-empty string', parts[name]);
  }
  if (typeof parts.frameSize !== 'number' || !Number.isFinite(parts.frameSize)) throw invalidArgument('frameSize', 'number', parts.frameSize);
  if (parts.sampling === null || typeof parts.sampling !== 'object') throw invalidArgument('sampling', 'an object', parts.sampling);
  const text = canonical({
    format: 'video-rnn-features/1',
    video: parts.video,
    frameSize: parts.frameSize,
    sampling: parts.sampling,
    backbone: parts.backbone,
    precision: parts.precision,
  });
  return createHash('sha256').update(text).digest('hex');
}

export interface VideoDigest {
  path: string;
  size: number;
  mtimeMs: number;
  sha256: string;
}

const digests = new Map<string, Promise<VideoDigest>>();
/** How many files this process has hashed (not answered from memory); for tests and stats. */
export const videoDigestCounters = { hashed: 0 };

function statIdentity(absolute: string, stats: fs.BigIntStats): string {
  return `${absolute}\u0000${stats.size}\u0000${stats.mtimeNs}\u0000${stats.ctimeNs}\u0000${stats.dev}\u0000${stats.ino}`;
}

async function statFile(absolute: string): Promise<fs.BigIntStats> {
  try {
    const stats = await fs.promises.stat(absolute, { bigint: true });
    if (!stats.isFile()) throw new VideoRNNError('E_VIDEO_NOT_FOUND', `${absolute} is not a file`);
    return stats;
  } catch (error) {
    if (error instanceof VideoRNNError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new VideoRNNError('E_VIDEO_NOT_FOUND', `No video at ${absolute}`, { cause: error });
    throw new VideoRNNError('E_IO', `Cannot read ${absolute} (${code ?? 'error'})`, { cause: error });
  }
}

function hashFile(absolute: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const stream = fs.createReadStream(absolute, { highWaterMark: 1 << 20 });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('error', (error: NodeJS.ErrnoException) => {
      reject(new VideoRNNError('E_IO', `Cannot read ${absolute} (${error.code ?? 'error'})`, { cause: error }));
    });
    stream.on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * SHA-256 of a file's bytes, streamed. Remembered for this process by absolute path, size,
 * modification and status-change times (ns), device and inode: a file changed in any of those is
 * hashed again, an unchanged one once. A file that changes while it is hashed is hashed again.
 */
export async function videoDigest(file: string): Promise<VideoDigest> {
  if (typeof file !== 'string' || file.length === 0) throw invalidArgument('file', 'non-empty string', file);
  const absolute = path.resolve(file);
  for (let attempt = 0; ; attempt++) {
    const before = await statFile(absolute);
    const identity = statIdentity(absolute, before);
    let pending = digests.get(identity);
    if (pending === undefined) {
      pending = (async () => {
        videoDigestCounters.hashed++;
        const sha256 = await hashFile(absolute);
        return { path: absolute, size: Number(before.size), mtimeMs: Number(before.mtimeNs / 1000n) / 1000, sha256 };
      })();
      digests.set(identity, pending);
      pending.catch(() => digests.delete(identity));
      const result = await pending;
      const after = await statFile(absolute);
      if (statIdentity(absolute, after) === identity || attempt >= 2) return result;
      digests.delete(identity);
      continue;
    }
    return pending;
  }
}
