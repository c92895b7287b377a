/**
 * What ffmpeg and ffprobe may do with a file they are given: which container formats they may read,
 * how many frames a clip may keep, how large a picture may be and how long a video may last. Every
 * input is treated as untrusted (docs/video.md, "Untrusted input"). Each bound has a built-in
 * default, an environment variable, a process-wide setting (videoLimits) and a per-call option, in
 * rising order of precedence.
 */
import { VideoRNNError, checkInteger, checkNumber, invalidArgument } from '../errors';
import type { VideoInfo } from './probe';

/**
 * ffmpeg demuxer names (`ffmpeg -demuxers`, the same in 5.1 and 7.1). ffmpeg matches each
 * comma-separated part of a demuxer's name, so `mov` admits `mov,mp4,m4a,3gp,3g2,mj2` and
 * `matroska` admits `matroska,webm`. None of these opens another file or a URL on its own.
 */
export const defaultVideoFormats: readonly string[] = Object.freeze([
  'mov', 'matroska', 'avi', 'mpegts', 'mpeg', 'flv', 'ogg', 'h264', 'hevc',
]);

/** Only a local file: never a URL, a sub-file or a pipe named by the input. */
export const protocolWhitelist = 'file';

export interface VideoLimits {
  /** Container formats (ffmpeg demuxer names) ffmpeg and ffprobe may read. */
  formats: readonly string[];
  /** Most frames a decoded clip may hold; more is refused (without `frames` or `maxFrames`). */
  maxClipFrames: number;
  /** Most pixels (width x height) of one decoded picture, inside ffmpeg and in the probed size. */
  maxPixels: number;
  /** Longest video in seconds, by its header and by its decoded timestamps; null: no limit. */
  maxVideoSeconds: number | null;
}

/** 100 s at 30 fps; 450 MB of rgb24 at 224 x 224 (docs/video.md says why). */
const builtInMaxClipFrames = 3000;
/** 8K UHD (7680 x 4320). */
const builtInMaxPixels = 7680 * 4320;
/** ffmpeg's own ceiling for max_pixels is INT_MAX. */
const largestMaxPixels = 2_147_483_647;
const largestClipFrames = 1_000_000;

const environment = {
  formats: 'VIDEO_RNN_FORMATS',
  maxClipFrames: 'VIDEO_RNN_MAX_CLIP_FRAMES',
  maxPixels: 'VIDEO_RNN_MAX_PIXELS',
  maxVideoSeconds: 'VIDEO_RNN_MAX_VIDEO_SECONDS',
} as const;

const configured: Partial<VideoLimits> = {};

/**
 * A list of demuxer names; `default` stands for defaultVideoFormats, so `default,gif` widens the
 * list by one format. Names are ffmpeg's: letters, digits and underscores.
 */
export function parseFormats(name: string, value: unknown): readonly string[] {
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items) || items.length === 0) {
    throw invalidArgument(name, 'a non-empty list of ffmpeg demuxer names (or "default")', value);
  }
  const formats: string[] = [];
  for (const raw of items) {
    const item = typeof raw === 'string' ? raw.trim() : raw;
    if (item === 'default') {
      formats.push(...defaultVideoFormats);
    } else if (typeof item === 'string' && /^[a-z0-9_]+$/.test(item)) {
      formats.push(item);
    } else {
      throw invalidArgument(`${name}[]`, 'an ffmpeg demuxer name (letters, digits, _) or "default"', raw);
    }
  }
  return Object.freeze([...new Set(formats)]);
}

function fromEnvironment(): Partial<VideoLimits> {
  const found: Partial<VideoLimits> = {};
  const read = (variable: string): string | undefined => {
    const text = process.env[variable];
    return text === undefined || text.trim() === '' ? undefined : text.trim();
  };
  const formats = read(environment.formats);
  if (formats !== undefined) found.formats = parseFormats(environment.formats, formats);
  const frames = read(environment.maxClipFrames);
  if (frames !== undefined) found.maxClipFrames = checkInteger(environment.maxClipFrames, Number(frames), 1, largestClipFrames);
  const pixels = read(environment.maxPixels);
  if (pixels !== undefined) found.maxPixels = checkInteger(environment.maxPixels, Number(pixels), 1, largestMaxPixels);
  const seconds = read(environment.maxVideoSeconds);
  if (seconds !== undefined) found.maxVideoSeconds = checkNumber(environment.maxVideoSeconds, Number(seconds), 0.001, 1e9);
  return found;
}

/** Checks a partial set of limits, as options of one call or of videoLimits(). */
export function parseLimits(record: Record<string, unknown>, prefix = ''): Partial<VideoLimits> {
  const limits: Partial<VideoLimits> = {};
  if (record.formats !== undefined) {
    if (!Array.isArray(record.formats)) throw invalidArgument(`${prefix}formats`, 'an array of ffmpeg demuxer names', record.formats);
    limits.formats = parseFormats(`${prefix}formats`, record.formats);
  }
  if (record.maxClipFrames !== undefined) {
    limits.maxClipFrames = checkInteger(`${prefix}maxClipFrames`, record.maxClipFrames, 1, largestClipFrames);
  }
  if (record.maxPixels !== undefined) limits.maxPixels = checkInteger(`${prefix}maxPixels`, record.maxPixels, 1, largestMaxPixels);
  if (record.maxVideoSeconds !== undefined) {
    limits.maxVideoSeconds = record.maxVideoSeconds === null ? null
      : checkNumber(`${prefix}maxVideoSeconds`, record.maxVideoSeconds, 0.001, 1e9);
  }
  return limits;
}

/** The limits one call works under: its own options over videoLimits() over the environment over the defaults. */
export function resolveLimits(options: Partial<VideoLimits> = {}): VideoLimits {
  return {
    formats: defaultVideoFormats, maxClipFrames: builtInMaxClipFrames, maxPixels: builtInMaxPixels, maxVideoSeconds: null,
    ...fromEnvironment(), ...configured, ...options,
  };
}

/**
 * Gets, or sets for this process, the limits decodeVideo and probeVideo work under when a call does
 * not set its own. A value of `undefined` leaves a setting as it is; `null` for maxVideoSeconds
 * removes the limit. Widening `formats` lets ffmpeg read more kinds of file (docs/video.md).
 */
export function videoLimits(settings?: Partial<VideoLimits>): VideoLimits {
  if (settings !== undefined) {
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw invalidArgument('settings', 'an object', settings);
    }
    for (const key of Object.keys(settings)) {
      if (!['formats', 'maxClipFrames', 'maxPixels', 'maxVideoSeconds'].includes(key)) {
        throw invalidArgument('option name', 'one of formats, maxClipFrames, maxPixels, maxVideoSeconds', key);
      }
    }
    const given = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
    Object.assign(configured, parseLimits(given));
  }
  return resolveLimits();
}

/** Forgets what videoLimits() set, back to the environment and the defaults. Not part of the API. */
export function resetVideoLimits(): void {
  for (const key of Object.keys(configured)) delete configured[key as keyof VideoLimits];
}

/** Input options that confine ffmpeg or ffprobe to the one local file and to the allowed formats. */
export function inputGuards(limits: VideoLimits): string[] {
  return ['-protocol_whitelist', protocolWhitelist, '-format_whitelist', limits.formats.join(','),
    '-max_pixels', String(limits.maxPixels)];
}

/**
 * A clearer cause than ffmpeg's last line for refusals the guards above produce, or null. ffmpeg
 * logs `[hls @ 0x...] Format not on whitelist '...'` (the demuxer it detected is the log context)
 * and `Picture size WxH exceeds specified max pixel count N`.
 */
export function refusalFrom(lines: readonly string[], what: string): VideoRNNError | null {
  for (const line of lines) {
    const format = /^\[([^\s@\]]+)\s*@[^\]]*\]\s*Format not on whitelist/.exec(line) ?? (/Format not on whitelist/.test(line) ? [] : null);
    if (format !== null) {
      const name = format[1] === undefined ? 'its container format' : `its container format (${format[1]})`;
      return new VideoRNNError('E_VIDEO_DECODE', `${what}: refused: ${name} is not among the allowed formats; ` +
        `a playlist, a list of files or a filter graph could make ffmpeg read other files or the network. ` +
        `Widen the list with the formats option, --video-formats or ${environment.formats} (docs/video.md)`);
    }
    const pixels = /Picture size (\d+)x(\d+) exceeds specified max pixel count (\d+)/.exec(line);
    if (pixels !== null) {
      return new VideoRNNError('E_VIDEO_DECODE', `${what}: refused: a picture of ${pixels[1]}x${pixels[2]} has more than ` +
        `${pixels[3]} pixels (maxPixels; --max-pixels or ${environment.maxPixels} raises it)`);
    }
  }
  return null;
}

/**
 * Refuses, before decoding, a clip that the limits rule out from its probe alone. The probe's duration
 * is the header's, or frames / fps when the header states none (raw H.264, some WebM); a video with
 * neither cannot be measured before it is decoded, so it is refused where a limit is set. Decoded
 * timestamps are checked as well, while ffmpeg runs (decode.ts).
 */
export function checkBeforeDecoding(what: string, stream: Pick<VideoInfo, 'duration'>,
  settings: { frames?: number; maxFrames?: number }, limits: VideoLimits): void {
  const count = settings.frames ?? settings.maxFrames;
  if (count !== undefined && count > limits.maxClipFrames) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', `${what}: ${settings.frames !== undefined ? 'frames' : 'maxFrames'} ` +
      `asks for ${count} frames, more than maxClipFrames (${limits.maxClipFrames}) allows`);
  }
  const seconds = limits.maxVideoSeconds;
  if (seconds === null) return;
  if (!(stream.duration > 0)) {
    throw new VideoRNNError('E_VIDEO_DECODE', `${what}: refused: the video states no duration, and maxVideoSeconds ` +
      `(${seconds} s) is set`);
  }
  if (stream.duration > seconds) {
    throw new VideoRNNError('E_VIDEO_DECODE', `${what}: refused: the video lasts ${stream.duration.toFixed(1)} s; ` +
      `videos of at most ${seconds} s are accepted (maxVideoSeconds)`);
  }
}

