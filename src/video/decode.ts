import os from 'node:os';
import type { Clip } from '../clip';
import { VideoRNNError, checkInteger, checkString, throwIfAborted } from '../errors';
import { locateFfmpeg } from './ffmpeg';
import { FrameCollector, largestClipBytes, tooLarge } from './frames';
import { ffmpegInput, probeStreamCached, statVideo, type VideoInfo, type VideoStream } from './probe';
import { lastLine, runFfmpeg } from './process';
import {
  type DecodeOptions, type ProbeOptions, defaultDecodeTimeout, defaultProbeTimeout,
  expectedStreamFrames, outputGeometry, parseDecodeOptions, parseProbeOptions, selectionFor,
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
  /** Null when the selection was computed for a different frame count than arrived. */
  clip: { data: Uint8Array; frames: number } | null;
  stderr: string[];
}

async function decodePass(
  ffmpeg: string, file: string, stream: VideoStream, settings: DecodeOptions,
  assumedTotal: number | null, timeoutMs: number,
): Promise<Pass> {
  const what = `Decoding "${file}"`;
  const geometry = outputGeometry(stream, settings);
  const frameBytes = geometry.width * geometry.height * 3;
  const selection = assumedTotal === null ? null : selectionFor(assumedTotal, settings);
  const collector = new FrameCollector(frameBytes, selection, what);
  const stderr = await runFfmpeg({
    binary: ffmpeg,
    input: ffmpegInput(file),
    // -nostdin: ffmpeg otherwise watches stdin for key presses. Errors only, so the last line is the cause.
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...threadOptions()],
    outputOptions: [
      '-map', `0:${stream.streamIndex}`,
      '-vf', geometry.filters.join(','),
      // Passthrough: rawvideo would otherwise be treated as constant-rate and frames duplicated or dropped.
      '-vsync', 'passthrough',
      '-pix_fmt', 'rgb24',
      '-f', 'rawvideo',
    ],
    output: { onData: collector.onData },
    niceness: tuning().decodeNice,
    signal: settings.signal,
    timeoutMs,
    what,
  });
  const received = collector.framesSeen;
  if (selection !== null) {
    const clip = received === assumedTotal ? { data: collector.selected(), frames: selection.length } : null;
    return { received, clip, stderr };
  }
  return { received, clip: collector.all(selectionFor(received, settings)), stderr };
}

/**
 * Decodes a video file into RGB24 frames. Sampling happens in two steps: `fps` (if set) resamples the
 * stream in ffmpeg, then `frames` or `maxFrames` picks evenly spread frames from what that produced.
 */
export async function decodeVideo(path: string, options?: DecodeOptions): Promise<Clip> {
  const file = checkString('path', path);
  const settings = parseDecodeOptions(options);
  const what = `Decoding "${file}"`;
  throwIfAborted(settings.signal, what);
  const { ffmpeg, ffprobe } = locateFfmpeg();
  const stats = await statVideo(file);
  const release = await slots.acquire(settings.signal, what);
  try {
    const budget = new Budget(settings.timeout);
    const stream = await probeStreamCached(ffprobe, file, stats,
      { signal: settings.signal, timeoutMs: budget.take(defaultProbeTimeout) });
    const geometry = outputGeometry(stream, settings);
    const frameBytes = geometry.width * geometry.height * 3;
    const expected = expectedStreamFrames(stream, settings);
    const outputFrames = settings.frames ?? Math.min(expected ?? 1, settings.maxFrames ?? Infinity);
    if (outputFrames * frameBytes > largestClipBytes) throw tooLarge(what, outputFrames * frameBytes);

    const decodeTimeout = defaultDecodeTimeout(stream);
    let pass = await decodePass(ffmpeg, file, stream, settings, expected, budget.take(decodeTimeout));
    if (pass.received === 0) {
      throw new VideoRNNError('E_VIDEO_DECODE', `${what}: no frame could be decoded: ${lastLine(pass.stderr)}`);
    }
    // ffmpeg logs errors but exits 0 on a cut-off file; fewer frames than the header promises plus an
    // error is how a truncated or damaged file shows.
    if (expected !== null && pass.received < expected && pass.stderr.length > 0) {
      throw new VideoRNNError('E_VIDEO_DECODE', `${what}: the file is truncated or damaged ` +
        `(decoded ${pass.received} of ${expected} frames): ${lastLine(pass.stderr)}`);
    }
    if (pass.clip === null) {
      // The estimate was off, so the chosen indices were wrong; the count is now known, and a second
      // pass over the same input yields the same frames.
      const actual = pass.received;
      pass = await decodePass(ffmpeg, file, stream, settings, actual, budget.take(decodeTimeout));
      if (pass.clip === null) {
        throw new VideoRNNError('E_VIDEO_DECODE', `${what}: ffmpeg returned ${actual} and then ` +
          `${pass.received} frames for the same input: ${lastLine(pass.stderr)}`);
      }
    }
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
      signal: settings.signal, timeoutMs: settings.timeout ?? defaultProbeTimeout,
    });
    return { duration: stream.duration, fps: stream.fps, width: stream.width, height: stream.height, frames: stream.frames };
  } catch (error) {
    throw withCallerStack(error);
  } finally {
    release();
  }
}
