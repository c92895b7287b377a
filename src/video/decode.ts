import type fs from 'node:fs';
import os from 'node:os';
import type { Clip } from '../clip';
import { VideoRNNError, checkInteger, checkString, throwIfAborted } from '../errors';
import { locateFfmpeg } from './ffmpeg';
import { AllFrames, type ClipFrames, type FrameSink, SampledFrames, largestClipBytes, tooLarge } from './frames';
import { type VideoLimits, checkBeforeDecoding, inputGuards, refusalFrom, resolveLimits } from './limits';
import { ffmpegInput, probeStreamCached, statVideo, type VideoInfo, type VideoStream } from './probe';
import { lastLine, runFfmpeg } from './process';
import {
  type DecodeOptions, type DecodeSettings, type OutputGeometry, type ProbeOptions, defaultDecodeTimeout,
  defaultProbeTimeout, expectedStreamFrames, outputGeometry, parseDecodeOptions, parseProbeOptions,
} from './sampling';
import { Semaphore } from './semaphore';
import { tuning } from '../tuning';

/** ffmpeg and ffprobe processes of this process's decodes and probes, at most one per core by default. */
export const slots = new Semaphore(os.availableParallelism());

/**
 * Gets or sets how many ffmpeg and ffprobe processes run at once, process-wide (each ffmpeg may
 * decode several videos: group.ts); the default is the number of cores. Calls beyond the limit wait
 * in order.
 */
export function decodeConcurrency(limit?: number): number {
  if (limit !== undefined) slots.limit = checkInteger('limit', limit, 1, 1024);
  return slots.limit;
}

/**
 * Errors raised in process callbacks carry a stack of event-loop frames only. Re-creating them here,
 * inside the awaited call, gives a stack that leads back to the caller's own code.
 */
export function withCallerStack(error: unknown): unknown {
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

/**
 * ffmpeg's thread options, when tuning sets them (src/tuning.ts): `input`, decoder threads, goes
 * before each `-i`; `global`, filter-graph threads, once per command line.
 */
export function threadOptions(): { input: string[]; global: string[] } {
  const threads = tuning().ffmpegThreads;
  return threads > 0 ? { input: ['-threads', String(threads)], global: ['-filter_threads', String(threads)] }
    : { input: [], global: [] };
}

interface Pass {
  /** Frames ffmpeg sent (after fps resampling, before selection). */
  received: number;
  clip: ClipFrames;
  stderr: string[];
}

/** Decoded timestamps may run this far past maxVideoSeconds: the last frame's duration, a header's rounding. */
const decodedTimeSlack = 1;

/** One file's decode, checked, before any ffmpeg runs. */
export interface DecodeRequest {
  file: string;
  settings: DecodeSettings;
  limits: VideoLimits;
  what: string;
  ffmpeg: string;
  ffprobe: string;
  stats: fs.Stats | null;
}

/** A request with its stream facts: what ffmpeg is asked for and what should come back. */
export interface DecodePlan extends DecodeRequest {
  stream: VideoStream;
  geometry: OutputGeometry;
  frameBytes: number;
  /** Frames ffmpeg should send, from the stream facts; null when they give no count. */
  expected: number | null;
}

/** Checks a request against its stream facts; throws what the limits refuse before decoding. */
export function planDecode(request: DecodeRequest, stream: VideoStream): DecodePlan {
  const { settings, limits, what } = request;
  checkBeforeDecoding(what, stream, settings, limits);
  const geometry = outputGeometry(stream, settings);
  const frameBytes = geometry.width * geometry.height * 3;
  const expected = expectedStreamFrames(stream, settings);
  const outputFrames = settings.frames ?? Math.min(expected ?? 1, settings.maxFrames ?? limits.maxClipFrames);
  if (outputFrames * frameBytes > largestClipBytes) throw tooLarge(what, outputFrames * frameBytes);
  return { ...request, stream, geometry, frameBytes, expected };
}

/** What keeps a plan's frames as they arrive: every frame, or the sampled ones (frames.ts). */
export function frameSink(plan: DecodePlan): FrameSink {
  const count = plan.settings.frames ?? plan.settings.maxFrames;
  return count === undefined ? new AllFrames(plan.frameBytes, plan.limits.maxClipFrames, plan.what)
    : new SampledFrames(plan.frameBytes, count, plan.settings.frames !== undefined, plan.expected);
}

/** ffmpeg's options for one output of a plan: its stream, its filters, raw RGB24. */
export function outputOptions(plan: DecodePlan, map = plan.stream.map): string[] {
  return [
    '-map', map,
    '-vf', plan.geometry.filters.join(','),
    // Passthrough: rawvideo would otherwise be treated as constant-rate and frames duplicated or dropped.
    '-vsync', 'passthrough',
    '-pix_fmt', 'rgb24',
    '-f', 'rawvideo',
  ];
}

/** The bound on decoded time ffmpeg's progress reports are checked against, if the limits set one. */
export function outputTimeLimit(limits: VideoLimits): { maxOutputSeconds?: number; maxOutputReason?: string } {
  return limits.maxVideoSeconds === null ? {}
    : { maxOutputSeconds: limits.maxVideoSeconds + decodedTimeSlack, maxOutputReason: `maxVideoSeconds is ${limits.maxVideoSeconds} s` };
}

export async function decodePass(plan: DecodePlan, timeoutMs: number): Promise<Pass> {
  const sink = frameSink(plan);
  const threads = threadOptions();
  const stderr = await runFfmpeg({
    binary: plan.ffmpeg,
    input: ffmpegInput(plan.file),
    // -nostdin: ffmpeg otherwise watches stdin for key presses. Errors only, so the last line is the cause.
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...inputGuards(plan.limits), ...threads.input, ...threads.global],
    outputOptions: outputOptions(plan),
    output: { onData: sink.onData },
    niceness: tuning().decodeNice,
    signal: plan.settings.signal,
    timeoutMs,
    what: plan.what,
    ...outputTimeLimit(plan.limits),
  });
  return { received: sink.framesSeen, clip: sink.result(), stderr };
}

/** The clip from what one decode of the plan sent, or the error that explains why there is none. */
export function finishDecode(plan: DecodePlan, pass: Pass): Clip {
  const { expected, what } = plan;
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
  return { data: pass.clip.data, frames: pass.clip.frames, height: plan.geometry.height, width: plan.geometry.width };
}

/** Takes one slot of each semaphore, in order; the function returned gives them all back. */
export async function acquireAll(semaphores: readonly Semaphore[], signal: AbortSignal | undefined, what: string): Promise<() => void> {
  const releases: (() => void)[] = [];
  try {
    for (const semaphore of semaphores) releases.push(await semaphore.acquire(signal, what));
  } catch (error) {
    for (const release of releases.reverse()) release();
    throw error;
  }
  return () => {
    for (const release of releases.reverse()) release();
  };
}

/**
 * Decodes one file in a process of its own, probing it first (ffprobe) when its container's index
 * gave no stream facts (`indexed` null).
 */
export async function decodeAlone(request: DecodeRequest, indexed: VideoStream | null,
  semaphores: readonly Semaphore[]): Promise<Clip> {
  const { settings, what } = request;
  const release = await acquireAll(semaphores, settings.signal, what);
  try {
    const budget = new Budget(settings.timeout);
    const stream = indexed ?? await probeStreamCached(request.ffprobe, request.file, request.stats,
      { signal: settings.signal, timeoutMs: budget.take(defaultProbeTimeout), limits: request.limits });
    const plan = planDecode(request, stream);
    return finishDecode(plan, await decodePass(plan, budget.take(defaultDecodeTimeout(stream))));
  } finally {
    release();
  }
}

/** Checks decodeVideo's arguments and finds the file; what a decode starts from. */
export async function decodeRequest(path: string, options?: DecodeOptions): Promise<DecodeRequest> {
  const file = checkString('path', path);
  const settings = parseDecodeOptions(options);
  const limits = resolveLimits(settings.limits);
  const what = `Decoding "${file}"`;
  throwIfAborted(settings.signal, what);
  const { ffmpeg, ffprobe } = locateFfmpeg();
  const stats = await statVideo(file);
  return { file, settings, limits, what, ffmpeg, ffprobe, stats };
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
