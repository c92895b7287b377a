import fs from 'node:fs';
import os from 'node:os';
import type { Clip } from '../clip';
import { VideoRNNError, checkInteger, checkString, throwIfAborted } from '../errors';
import { locateFfmpeg } from './ffmpeg';
import { AllFrames, type ClipFrames, type FrameSink, SampledFrames, largestClipBytes, tooLarge } from './frames';
import { type VideoLimits, checkBeforeDecoding, inputGuards, refusalFrom, resolveLimits } from './limits';
import { checkPixels, ffmpegInput, probeStreamCached, statVideo, type VideoInfo, type VideoStream } from './probe';
import { readAviIndex } from './avi-index';
import { readMatroskaIndex } from './mkv-index';
import { readMp4Index } from './mp4-index';
import { lastLine, runFfmpeg } from './process';
import {
  type DecodeOptions, type DecodeSettings, type ProbeOptions, defaultDecodeTimeout, defaultProbeTimeout,
  expectedStreamFrames, outputGeometry, parseDecodeOptions, parseProbeOptions,
} from './sampling';
import { Semaphore } from './semaphore';
import { tuning } from '../tuning';

const slots = new Semaphore(os.availableParallelism());

/**
 * Gets or sets how many videos are decoded (or probed) at once, process-wide; the default is the
 * number of cores. Calls beyond the limit wait in order.
 */
export function decodeConcurrency(limit?: number): number {
  if (limit !== undefined) slots.limit = checkInteger('limit', limit, 1, 1024);
  return slots.limit;
}

/**
 * Errors raised in process callbacks carry a stack of event-loop frames only. Re-creating them here,
 * inside the awaited call, gives a stack that leads back to the caller's own code.
 */
function withCallerStack(error: unknown): unknown {
  if (!(error instanceof VideoRNNError)) return error;
  return new VideoRNNError(error.code, error.message, { cause: error.cause });
}

/** Milliseconds left before a deadline, or the fallback when the caller set none. */
class Budget {
  private readonly deadline: number | null;

  constructor(timeout: number | undefined) {
    this.deadline = timeout === undefined ? null : Date.now() + timeout;
  }

  take(fallback: number): number {
    return this.deadline === null ? fallback : Math.max(1, this.deadline - Date.now());
  }
}

/** ffmpeg's decoder and filter-graph threads, when tuning sets them (src/tuning.ts). */
function threadOptions(): string[] {
  const threads = tuning().ffmpegThreads;
  return threads > 0 ? ['-threads', String(threads), '-filter_threads', String(threads)] : [];
}

interface Pass {
  /** Frames ffmpeg sent (after fps resampling, before selection). */
  received: number;
  clip: ClipFrames;
  stderr: string[];
}

/** Decoded timestamps may run this far past maxVideoSeconds: the last frame's duration, a header's rounding. */
const decodedTimeSlack = 1;

async function decodePass(
  ffmpeg: string, file: string, stream: VideoStream, settings: DecodeSettings, limits: VideoLimits,
  claimed: number | null, timeoutMs: number,
): Promise<Pass> {
  const what = `Decoding "${file}"`;
  const geometry = outputGeometry(stream, settings);
  const frameBytes = geometry.width * geometry.height * 3;
  const count = settings.frames ?? settings.maxFrames;
  const sink: FrameSink = count === undefined ? new AllFrames(frameBytes, limits.maxClipFrames, what)
    : new SampledFrames(frameBytes, count, settings.frames !== undefined, claimed);
  const stderr = await runFfmpeg({
    binary: ffmpeg,
    input: ffmpegInput(file),
    // -nostdin: ffmpeg otherwise watches stdin for key presses. Errors only, so the last line is the cause.
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...inputGuards(limits), ...threadOptions()],
    outputOptions: [
      '-map', stream.map,
      '-vf', geometry.filters.join(','),
      // Passthrough: rawvideo would otherwise be treated as constant-rate and frames duplicated or dropped.
      '-vsync', 'passthrough',
      '-pix_fmt', 'rgb24',
      '-f', 'rawvideo',
    ],
    output: { onData: sink.onData },
    niceness: tuning().decodeNice,
    signal: settings.signal,
    timeoutMs,
    what,
    ...(limits.maxVideoSeconds === null ? {}
      : { maxOutputSeconds: limits.maxVideoSeconds + decodedTimeSlack, maxOutputReason: `maxVideoSeconds is ${limits.maxVideoSeconds} s` }),
  });
  return { received: sink.framesSeen, clip: sink.result(), stderr };
}

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
async function indexedStream(file: string, limits: VideoLimits, signal?: AbortSignal): Promise<VideoStream | null> {
  if (!tuning().containerIndex) return null;
  const container = await sniffContainer(file);
  if (container === null || !limits.formats.includes(container)) return null;
  const stream = await indexReaders[container](file, signal);
  if (stream !== null) checkPixels(`Probing "${file}"`, stream.width, stream.height, limits);
  return stream;
}

/**
 * Decodes a video file into RGB24 frames. Sampling happens in two steps: `fps` (if set) resamples the
 * stream in ffmpeg, then `frames` or `maxFrames` picks evenly spread frames from what that produced,
 * in one pass whatever the container claims (src/video/frames.ts).
 */
export async function decodeVideo(path: string, options?: DecodeOptions): Promise<Clip> {
  const file = checkString('path', path);
  const settings = parseDecodeOptions(options);
  const limits = resolveLimits(settings.limits);
  const what = `Decoding "${file}"`;
  throwIfAborted(settings.signal, what);
  const { ffmpeg, ffprobe } = locateFfmpeg();
  const stats = await statVideo(file);
  const release = await slots.acquire(settings.signal, what);
  try {
    const budget = new Budget(settings.timeout);
    const indexed = await indexedStream(file, limits, settings.signal);
    throwIfAborted(settings.signal, what);
    const stream = indexed ?? await probeStreamCached(ffprobe, file, stats,
      { signal: settings.signal, timeoutMs: budget.take(defaultProbeTimeout), limits });
    checkBeforeDecoding(what, stream, settings, limits);
    const geometry = outputGeometry(stream, settings);
    const frameBytes = geometry.width * geometry.height * 3;
    const expected = expectedStreamFrames(stream, settings);
    const outputFrames = settings.frames ?? Math.min(expected ?? 1, settings.maxFrames ?? limits.maxClipFrames);
    if (outputFrames * frameBytes > largestClipBytes) throw tooLarge(what, outputFrames * frameBytes);

    const pass = await decodePass(ffmpeg, file, stream, settings, limits, expected, budget.take(defaultDecodeTimeout(stream)));
    if (pass.received === 0) {
      throw refusalFrom(pass.stderr, what) ??
        new VideoRNNError('E_VIDEO_DECODE', `${what}: no frame could be decoded: ${lastLine(pass.stderr)}`);
    }
    // ffmpeg logs errors but exits 0 on a cut-off file; fewer frames than the header promises plus an
    // error is how a truncated or damaged file shows.
    if (expected !== null && pass.received < expected && pass.stderr.length > 0) {
      throw refusalFrom(pass.stderr, what) ?? new VideoRNNError('E_VIDEO_DECODE', `${what}: the file is truncated or damaged ` +
        `(decoded ${pass.received} of ${expected} frames): ${lastLine(pass.stderr)}`);
    }
    const refusal = refusalFrom(pass.stderr, what);
    if (refusal !== null) throw refusal;
    return { data: pass.clip.data, frames: pass.clip.frames, height: geometry.height, width: geometry.width };
  } catch (error) {
    throw withCallerStack(error);
  } finally {
    release();
  }
}

/** Duration, frame rate, displayed size and frame count of a video's first video stream. */
export async function probeVideo(path: string, options?: ProbeOptions): Promise<VideoInfo> {
  const file = checkString('path', path);
  const settings = parseProbeOptions(options);
  const what = `Probing "${file}"`;
  throwIfAborted(settings.signal, what);
  const { ffprobe } = locateFfmpeg();
  const stats = await statVideo(file);
  const release = await slots.acquire(settings.signal, what);
  try {
    const stream = await probeStreamCached(ffprobe, file, stats, {
      signal: settings.signal, timeoutMs: settings.timeout ?? defaultProbeTimeout, limits: resolveLimits(settings.limits),
    });
    return { duration: stream.duration, fps: stream.fps, width: stream.width, height: stream.height, frames: stream.frames };
  } catch (error) {
    throw withCallerStack(error);
  } finally {
    release();
  }
}
