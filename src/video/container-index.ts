import fs from 'node:fs';
import { tuning } from '../tuning';
import { readAviIndex } from './avi-index';
import type { VideoLimits } from './limits';
import { readMatroskaIndex } from './mkv-index';
import { readMp4Index } from './mp4-index';
import { checkPixels, type VideoStream } from './probe';

/** The container a file's first bytes name (whatever its extension), as an ffmpeg demuxer name, or null. */
async function sniffContainer(file: string): Promise<'mov' | 'matroska' | 'avi' | null> {
  let first: Buffer;
  try {
    const handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    try {
      first = Buffer.alloc(12);
      first = first.subarray(0, (await handle.read(first, 0, 12, 0)).bytesRead);
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
  if (first.length < 12) return null;
  if (first.toString('latin1', 4, 8) === 'ftyp') return 'mov';
  if (first.readUInt32BE(0) === 0x1a45dfa3) return 'matroska';
  if (first.toString('latin1', 0, 4) === 'RIFF' && first.toString('latin1', 8, 12) === 'AVI ') return 'avi';
  return null;
}

const indexReaders: Record<'mov' | 'matroska' | 'avi', (file: string, signal?: AbortSignal) => Promise<VideoStream | null>> = {
  mov: readMp4Index, matroska: readMatroskaIndex, avi: readAviIndex,
};

/**
 * An MP4/MOV, Matroska/WebM or AVI file's stream facts from its own index or header, read here, so
 * that decoding starts one process (ffmpeg) and not two; null where the reader cannot answer, or
 * where the container is not an allowed format (ffmpeg then refuses the file with the same message
 * ffprobe would give).
 */
export async function indexedStream(file: string, limits: VideoLimits, signal?: AbortSignal): Promise<VideoStream | null> {
  if (!tuning().containerIndex) return null;
  const container = await sniffContainer(file);
  if (container === null || !limits.formats.includes(container)) return null;
  const stream = await indexReaders[container](file, signal);
  if (stream !== null) checkPixels(`Probing "${file}"`, stream.width, stream.height, limits);
  return stream;
}
