import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError } from '../errors';
import { type VideoLimits, inputGuards } from './limits';
import { runFfprobe } from './process';

/** What probeVideo reports. Width and height are as displayed: a rotated phone video reports its upright size. */
export interface VideoInfo {
  /** Seconds. */
  duration: number;
  /** Average frames per second. */
  fps: number;
  width: number;
  height: number;
  /** Frames in the stream (from the container header, or counted when the header has none). */
  frames: number;
}

/** Internal details decodeVideo needs beyond the public report. */
export interface VideoStream extends VideoInfo {
  /**
   * The stream for ffmpeg's `-map`: `0:<absolute index>` from ffprobe, or `0:V:0` (the first video
   * stream that is not cover art) from a container index, whose track order need not be ffmpeg's.
   */
  map: string;
}

interface ProbeLimits {
  signal?: AbortSignal;
  timeoutMs: number;
  limits: VideoLimits;
}

interface ProbedStream {
  index?: number;
  codec_type?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  nb_read_packets?: string;
  tags?: Record<string, string>;
  disposition?: Record<string, number>;
  side_data_list?: { rotation?: number | string }[];
}

interface ProbeReport {
  streams?: ProbedStream[];
  format?: { duration?: string };
}

/** `file:` stops ffmpeg from reading a name such as `concat:a|b` or `http:x` as a protocol. */
export function ffmpegInput(file: string): string {
  return 'file:' + path.resolve(file);
}

/**
 * Missing files get their own code, and anything but a regular file is refused before ffmpeg sees
 * it: a FIFO, a socket or a device can block an open for ever or never end. Anything else that stat
 * rejects is left for ffmpeg to explain.
 */
export async function statVideo(file: string): Promise<fs.Stats | null> {
  let stats: fs.Stats;
  try {
    stats = await fs.promises.stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new VideoRNNError('E_VIDEO_NOT_FOUND', `Video file not found: ${file}`, { cause: error });
    }
    return null;
  }
  if (!stats.isFile()) {
    const kind = stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : stats.isSocket() ? 'a socket'
      : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : 'not a regular file';
    throw new VideoRNNError('E_VIDEO_DECODE', `"${file}" is ${kind}; only regular files are read`);
  }
  return stats;
}

function parseRate(text: string | undefined): number {
  if (text === undefined) return NaN;
  const [numerator, denominator] = text.split('/').map(Number);
  if (denominator === undefined) return numerator;
  return denominator > 0 ? numerator / denominator : NaN;
}

function parseCount(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) return NaN;
  return Number(text);
}

/** Rotation lives in the display matrix side data (ffmpeg 5+) or in a `rotate` tag (older builds). */
function rotationOf(stream: ProbedStream): number {
  const fromSideData = stream.side_data_list?.find((entry) => entry.rotation !== undefined)?.rotation;
  const raw = Number(fromSideData ?? stream.tags?.rotate ?? 0);
  if (!Number.isFinite(raw)) return 0;
  return ((Math.round(raw) % 360) + 360) % 360;
}

function parseReport(text: string, what: string): ProbeReport {
  try {
    return JSON.parse(text) as ProbeReport;
  } catch (error) {
    throw new VideoRNNError('E_VIDEO_DECODE', `${what} failed: ffprobe printed unreadable output`, { cause: error });
  }
}

/** Refuses frames larger than maxPixels, from the stream's stated size. */
export function checkPixels(what: string, width: number, height: number, limits: VideoLimits): void {
  if (width * height > limits.maxPixels) {
    throw new VideoRNNError('E_VIDEO_DECODE', `${what}: refused: frames of ${width}x${height} have more than ` +
      `${limits.maxPixels} pixels (maxPixels; --max-pixels or VIDEO_RNN_MAX_PIXELS raises it)`);
  }
}

/** Probes the first real video stream (cover art in audio files is a one-frame "video" and does not count). */
export async function probeStream(ffprobe: string, file: string, limits: ProbeLimits): Promise<VideoStream> {
  const what = `Probing "${file}"`;
  const common = ['-v', 'error', '-hide_banner', ...inputGuards(limits.limits), '-print_format', 'json'];
  const run = { binary: ffprobe, what, signal: limits.signal, timeoutMs: limits.timeoutMs };
  const report = parseReport(await runFfprobe({
    ...run, args: [...common, '-show_format', '-show_streams', ffmpegInput(file)],
  }), what);
  const streams = report.streams ?? [];
  const video = streams.find((stream) => stream.codec_type === 'video' && stream.disposition?.attached_pic !== 1);
  if (video === undefined || video.index === undefined) {
    const kinds = streams.map((stream) => stream.codec_type ?? 'unknown');
    throw new VideoRNNError('E_VIDEO_DECODE', `${what}: the file has no video stream ` +
      `(streams: ${kinds.length > 0 ? kinds.join(', ') : 'none'})`);
  }
  const width = video.width ?? 0;
  const height = video.height ?? 0;
  if (width <= 0 || height <= 0) {
    throw new VideoRNNError('E_VIDEO_DECODE', `${what}: the video stream has no frame size (${width}x${height})`);
  }
  checkPixels(what, width, height, limits.limits);

  let frames = parseCount(video.nb_frames);
  if (!Number.isFinite(frames) || frames <= 0) {
    // Matroska, WebM and MPEG-TS headers carry no frame count; counting packets only demuxes, it does not decode.
    const counted = parseReport(await runFfprobe({
      ...run, args: [...common, '-count_packets', '-select_streams', String(video.index),
        '-show_entries', 'stream=nb_read_packets', ffmpegInput(file)],
    }), what);
    frames = parseCount(counted.streams?.[0]?.nb_read_packets);
    if (!Number.isFinite(frames)) frames = 0;
  }

  let fps = parseRate(video.avg_frame_rate);
  if (!(fps > 0)) fps = parseRate(video.r_frame_rate);
  let duration = Number(video.duration);
  if (!(duration > 0)) duration = Number(report.format?.duration);
  if (!(duration > 0)) duration = fps > 0 ? frames / fps : 0;
  if (!(fps > 0)) fps = duration > 0 ? frames / duration : 0;

  const rotation = rotationOf(video);
  const sideways = rotation === 90 || rotation === 270;
  return {
    duration,
    fps,
    width: sideways ? height : width,
    height: sideways ? width : height,
    frames,
    map: `0:${video.index}`,
  };
}

const probeCache = new Map<string, { version: string; stream: VideoStream }>();
const probeCacheEntries = 4096;

/**
 * probeStream, remembered per file while its size, modification time and inode stay the same: a
 * training loop decodes the same files every epoch, and ffprobe's start-up costs about as much as
 * decoding a short clip.
 */
export async function probeStreamCached(ffprobe: string, file: string, stats: fs.Stats | null,
  limits: ProbeLimits): Promise<VideoStream> {
  if (stats === null || !stats.isFile()) return probeStream(ffprobe, file, limits);
  // The formats allowed decide whether ffprobe reads the file at all; the pixel limit is checked again below.
  const key = `${ffprobe}\0${limits.limits.formats.join(',')}\0${path.resolve(file)}`;
  const version = `${stats.size}:${stats.mtimeMs}:${stats.ino}`;
  const known = probeCache.get(key);
  if (known !== undefined && known.version === version) {
    const { width, height } = known.stream;
    if (width * height > limits.limits.maxPixels) return probeStream(ffprobe, file, limits);
    return known.stream;
  }
  const stream = await probeStream(ffprobe, file, limits);
  probeCache.delete(key);
  probeCache.set(key, { version, stream });
  if (probeCache.size > probeCacheEntries) probeCache.delete(probeCache.keys().next().value as string);
  return stream;
}

/**
 * Forgets every remembered probe: the next decode of each file starts ffprobe again, as in a new
 * process. For measurements of a first epoch; not part of the package's API.
 */
export function clearProbeCache(): void {
  probeCache.clear();
}
