// From what users pass (paths or Clips) to frames the native batch accepts.
import type { Clip } from './clip';
import { MIN_FRAME_SIZE } from './constants';
import { VideoRNNError, invalidArgument } from './errors';
import type { NativeClip } from './native';
import { LIMITS, Sampling } from './options';
import { decodeVideo } from './video';

export type VideoInput = string | Clip;

/** Checks a Clip's geometry against its buffer before any native code reads it. */
export function checkClip(clip: Clip, name = 'clip'): Clip {
  if (typeof clip !== 'object' || clip === null || !(clip.data instanceof Uint8Array)) {
    throw invalidArgument(name, 'a path or a Clip { data: Uint8Array, frames, height, width }', clip);
  }
  for (const key of ['frames', 'height', 'width'] as const) {
    const value = clip[key];
    if (!Number.isInteger(value) || value < 1) throw invalidArgument(`${name}.${key}`, 'positive integer', value);
  }
  if (clip.frames > LIMITS.frames) throw invalidArgument(`${name}.frames`, `at most ${LIMITS.frames}`, clip.frames);
  if (clip.height < MIN_FRAME_SIZE || clip.width < MIN_FRAME_SIZE) {
    throw new VideoRNNError('E_INVALID_ARGUMENT',
      `${name} frames are ${clip.width}x${clip.height}; VGG16 needs at least ${MIN_FRAME_SIZE}x${MIN_FRAME_SIZE}`);
  }
  if (clip.height > LIMITS.frameSize * 4 || clip.width > LIMITS.frameSize * 4) {
    throw invalidArgument(`${name} frame size`, `at most ${LIMITS.frameSize * 4} px a side`, `${clip.width}x${clip.height}`);
  }
  const expected = clip.frames * clip.height * clip.width * 3;
  if (clip.data.length !== expected) {
    throw new VideoRNNError('E_INVALID_ARGUMENT',
      `${name} has ${clip.data.length} bytes but frames x height x width x 3 = ${expected}`);
  }
  return clip;
}

export interface DecodeSpec {
  frameSize: number;
  sampling: Sampling;
  signal?: AbortSignal;
  onDecoded?: () => void;
}

/** A path is decoded with the model's sampling and frame size; a Clip is checked and used as is. */
export async function toClip(input: VideoInput, spec: DecodeSpec, name = 'input'): Promise<Clip> {
  if (typeof input === 'string') {
    const clip = await decodeVideo(input, { size: spec.frameSize, ...spec.sampling, signal: spec.signal });
    spec.onDecoded?.();
    return clip;
  }
  return checkClip(input, name);
}

export function nativeClip(clip: Clip, cacheKey?: string, store = false): NativeClip {
  return { data: clip.data, frames: clip.frames, height: clip.height, width: clip.width, cacheKey, store };
}

/** Splits items into consecutive batches of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let start = 0; start < items.length; start += size) batches.push(items.slice(start, start + size));
  return batches;
}

/**
 * Runs `run` on each prepared batch while the next one is being prepared, so decoding (ffmpeg
 * processes) overlaps with native compute. At most one batch is prepared ahead.
 */
export async function pipelined<B, P, R>(batches: readonly B[], prepare: (batch: B, index: number) => Promise<P>,
  run: (prepared: P, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next: Promise<P> | undefined = batches.length > 0 ? prepare(batches[0], 0) : undefined;
  for (let index = 0; index < batches.length; index += 1) {
    const current = await next!;
    next = index + 1 < batches.length ? prepare(batches[index + 1], index + 1) : undefined;
    // A rejected prefetch must not go unobserved if `run` throws first.
    next?.catch(() => undefined);
    results.push(await run(current, index));
  }
  return results;
}

/** Groups clips by frame size, keeping each clip's input position, since one batch needs one size. */
export function groupBySize<T extends { clip: Clip }>(items: readonly T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = `${item.clip.height}x${item.clip.width}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(item);
  }
  return [...groups.values()];
}
