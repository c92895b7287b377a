import { checkInteger, invalidArgument } from '../errors';
import { type VideoLimits, parseLimits } from './limits';
import type { VideoStream } from './probe';

export interface DecodeOptions {
  /** Resize the shorter side to `size`, then take the centre `size` x `size` square. */
  size?: number;
  /** Resample to this many frames per second (frames are repeated or dropped, as ffmpeg's fps filter does). */
  fps?: number;
  /** At most this many frames, spread evenly over the whole video when there are more. */
  maxFrames?: number;
  /** Exactly this many frames, spread evenly over the whole video (repeated when the video is shorter). */
  frames?: number;
  signal?: AbortSignal;
  /** Milliseconds for the whole decode once it starts; the default grows with the video's length and size. */
  timeout?: number;
  /** Container formats ffmpeg may read (demuxer names; "default" stands for the built-in list). */
  formats?: readonly string[];
  /** Most frames the clip may hold (default 3000); a longer clip without `frames` or `maxFrames` is refused. */
  maxClipFrames?: number;
  /** Most pixels of one decoded picture (default 7680 x 4320). */
  maxPixels?: number;
  /** Longest video accepted, in seconds, by its header and by its decoded timestamps (default: none). */
  maxVideoSeconds?: number | null;
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Milliseconds; default 60000. */
  timeout?: number;
  /** Container formats ffprobe may read, as for decodeVideo. */
  formats?: readonly string[];
  /** Most pixels of one decoded picture, as for decodeVideo. */
  maxPixels?: number;
}

/** What decodeVideo works with once its options are checked. */
export interface DecodeSettings extends DecodeOptions {
  limits: Partial<VideoLimits>;
}

const limitNames = ['formats', 'maxClipFrames', 'maxPixels', 'maxVideoSeconds'];
const decodeOptionNames = ['size', 'fps', 'maxFrames', 'frames', 'signal', 'timeout', ...limitNames];
const probeOptionNames = ['signal', 'timeout', 'formats', 'maxPixels'];
const largestTimeout = 2_147_483_647;

function readOptions(options: unknown, allowed: string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidArgument('options', 'an object', options);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw invalidArgument('option name', `one of ${allowed.join(', ')}`, key);
  }
  return record;
}

function checkSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw invalidArgument('signal', 'an AbortSignal', value);
  return value;
}

function checkTimeout(value: unknown): number | undefined {
  return value === undefined ? undefined : checkInteger('timeout', value, 1, largestTimeout);
}

/**
 * `frames` already fixes the count, so `maxFrames` beside it is refused. Shared by decodeVideo and by
 * VideoRNN.create's `sampling`, so that a model never holds a sampling that every decode would refuse.
 */
export function checkFrameCount(settings: { frames?: number; maxFrames?: number }, prefix = ''): void {
  if (settings.frames !== undefined && settings.maxFrames !== undefined) {
    throw invalidArgument(`${prefix}maxFrames`, `no value when ${prefix}frames is set (frames already fixes the count)`,
      settings.maxFrames);
  }
}

/** Checks what decodeVideo was given; the result holds only the options that were set. */
export function parseDecodeOptions(options: unknown): DecodeSettings {
  const record = readOptions(options, decodeOptionNames);
  const settings: DecodeSettings = {
    signal: checkSignal(record.signal), timeout: checkTimeout(record.timeout), limits: parseLimits(record),
  };
  if (record.size !== undefined) settings.size = checkInteger('size', record.size, 1, 8192);
  if (record.fps !== undefined) {
    const fps = record.fps;
    if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0 || fps > 1000) {
      throw invalidArgument('fps', 'number greater than 0 and at most 1000', fps);
    }
    settings.fps = fps;
  }
  if (record.maxFrames !== undefined) settings.maxFrames = checkInteger('maxFrames', record.maxFrames, 1, 1_000_000);
  if (record.frames !== undefined) settings.frames = checkInteger('frames', record.frames, 1, 1_000_000);
  checkFrameCount(settings);
  return settings;
}

export function parseProbeOptions(options: unknown): { signal?: AbortSignal; timeout?: number; limits: Partial<VideoLimits> } {
  const record = readOptions(options, probeOptionNames);
  return { signal: checkSignal(record.signal), timeout: checkTimeout(record.timeout), limits: parseLimits(record) };
}

/**
 * `count` indices spread evenly over `total` frames, first and last included, rounded half up with
 * integer arithmetic so that the result never depends on floating-point error. One frame is the middle
 * one. When `count` exceeds `total`, indices repeat and stay in order.
 */
export function uniformIndices(total: number, count: number): number[] {
  if (total <= 0) return [];
  if (count === 1) return [Math.floor(total / 2)];
  const span = total - 1;
  const steps = count - 1;
  const indices = new Array<number>(count);
  for (let index = 0; index < count; index += 1) {
    indices[index] = Math.floor((2 * index * span + steps) / (2 * steps));
  }
  return indices;
}

/**
 * How many frames ffmpeg will send before any selection. The fps filter emits one frame per output
 * tick over the stream's duration, which comes to round(duration x fps) with halves rounded up.
 * An estimate only: decodeVideo checks it against what arrives.
 */
export function expectedStreamFrames(stream: VideoStream, settings: DecodeOptions): number | null {
  if (settings.fps === undefined) return stream.frames > 0 ? stream.frames : null;
  if (!(stream.duration > 0)) return null;
  return Math.floor(stream.duration * settings.fps + 0.5);
}

export interface OutputGeometry {
  width: number;
  height: number;
  filters: string[];
}

/**
 * The filter chain. The size case scales by display aspect ratio (`dar` includes a non-square sample
 * aspect ratio) so that circles stay round, then crops the centre square; `crop` defaults to centring.
 * Without `size`, frames are forced to the probed size so the byte count per frame is certain.
 */
export function outputGeometry(stream: VideoStream, settings: DecodeOptions): OutputGeometry {
  const filters: string[] = [];
  if (settings.fps !== undefined) filters.push(`fps=${settings.fps}`);
  if (settings.size !== undefined) {
    const size = settings.size;
    filters.push(`scale=w='if(gte(dar,1),max(${size},round(${size}*dar)),${size})'` +
      `:h='if(gte(dar,1),${size},max(${size},round(${size}/dar)))':flags=bilinear`);
    filters.push('format=rgb24', `crop=${size}:${size}`, 'setsar=1');
    return { width: size, height: size, filters };
  }
  filters.push(`scale=${stream.width}:${stream.height}:flags=bilinear`, 'format=rgb24', 'setsar=1');
  return { width: stream.width, height: stream.height, filters };
}

/**
 * A decode is allowed 30 s plus 1 s per 10 megapixels of source video: far above real decoding
 * speed on slow machines, so only a hung ffmpeg ever reaches it. Several videos decoded by one
 * process share the 30 s and add up their pixels.
 */
export function defaultDecodeTimeout(...streams: VideoStream[]): number {
  const pixels = streams.reduce((sum, stream) => sum + sourcePixels(stream), 0);
  return Math.min(largestTimeout, Math.ceil(30_000 + pixels / 10_000));
}

/** The pixels a decoder goes through for a stream, by its stated frame count or duration. */
export function sourcePixels(stream: VideoStream): number {
  return Math.max(stream.frames, stream.duration * stream.fps, 1) * stream.width * stream.height;
}

export const defaultProbeTimeout = 60_000;
