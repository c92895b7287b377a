import { constants as bufferConstants } from 'node:buffer';
import { VideoRNNError } from '../errors';
import { uniformIndices } from './sampling';

/** The largest clip a typed array can hold in this Node.js. */
export const largestClipBytes = bufferConstants.MAX_LENGTH;

export function tooLarge(what: string, bytes: number): VideoRNNError {
  return new VideoRNNError('E_INVALID_ARGUMENT', `${what}: the clip would take ${(bytes / 2 ** 30).toFixed(1)} GiB, ` +
    'more than one buffer can hold; set size, fps, maxFrames or frames to decode less');
}

export interface ClipFrames {
  data: Uint8Array;
  frames: number;
}

/** Receives raw RGB24 bytes from ffmpeg's pipe, where frame boundaries fall anywhere inside chunks. */
export interface FrameSink {
  readonly onData: (chunk: Buffer) => void;
  /** Complete frames received so far. */
  readonly framesSeen: number;
  /** The clip, once ffmpeg is done. */
  result(): ClipFrames;
}

/**
 * Keeps every frame, up to `limit`: the frame after it throws, which stops ffmpeg, so neither
 * memory nor decoding time depends on what the container claims.
 */
export class AllFrames implements FrameSink {
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;

  constructor(private readonly frameBytes: number, private readonly limit: number, private readonly what: string) {}

  get framesSeen(): number {
    return Math.floor(this.keptBytes / this.frameBytes);
  }

  readonly onData = (chunk: Buffer): void => {
    this.keptBytes += chunk.length;
    if (this.keptBytes > this.limit * this.frameBytes) {
      this.kept.length = 0;
      throw new VideoRNNError('E_VIDEO_DECODE', `${this.what}: the video has more than ${this.limit} frames ` +
        `(maxClipFrames); keep fewer with fps, maxFrames or frames, or raise maxClipFrames`);
    }
    if (this.keptBytes > largestClipBytes) throw tooLarge(this.what, this.keptBytes);
    this.kept.push(chunk);
  };

  result(): ClipFrames {
    const frames = this.framesSeen;
    // Copied chunk by chunk into a fresh array: a view on a pooled Buffer would expose unrelated bytes.
    const data = new Uint8Array(frames * this.frameBytes);
    let written = 0;
    for (const chunk of this.kept) {
      if (written >= data.length) break;
      const piece = chunk.subarray(0, Math.min(chunk.length, data.length - written));
      data.set(piece, written);
      written += piece.length;
    }
    this.kept.length = 0;
    return { data, frames };
  }
}

/**
 * Keeps `count` evenly spread frames (`frames: count`, or `maxFrames: count`) in one pass, with
 * memory bounded by `count` whatever the video's real length:
 * - a plan: the frames uniformIndices picks for the count the probe claims, copied straight into
 *   the result as they pass. When the claim was right, that is the clip, exactly as picked;
 * - a reservoir for when it was not: every `stride`-th frame, at most 2 x count of them. When it
 *   fills, every other one is dropped and the stride doubles. The last frame is kept as well.
 *   Each frame uniformIndices would pick for the true count is then replaced by the nearest one
 *   kept: exact while the video has at most 2 x count frames, and otherwise within half a stride
 *   (stride <= frames / count), still distinct, in order, first and last included.
 */
export class SampledFrames implements FrameSink {
  private readonly plan: readonly number[] | null;
  private readonly planned: Uint8Array | null;
  private planCursor = 0;
  private readonly capacity: number;
  private reservoir: { index: number; data: Uint8Array }[] = [];
  private stride = 1;
  private current: Uint8Array;
  private lastFrame: { index: number; data: Uint8Array } | null = null;
  private frameIndex = 0;
  private offset = 0;

  /**
   * @param claimed the frame count the probe reports (or estimates), or null when it has none
   * @param exactly true for `frames` (repeat frames of a short video), false for `maxFrames`
   */
  constructor(private readonly frameBytes: number, private readonly count: number, private readonly exactly: boolean,
    private readonly claimed: number | null) {
    this.plan = claimed === null || claimed <= 0 ? null : this.indicesFor(claimed);
    this.planned = this.plan === null ? null : new Uint8Array(this.plan.length * frameBytes);
    this.capacity = 2 * count;
    this.current = new Uint8Array(frameBytes);
  }

  get framesSeen(): number {
    return this.frameIndex;
  }

  private indicesFor(total: number): number[] {
    if (!this.exactly && total <= this.count) return Array.from({ length: total }, (_, index) => index);
    return uniformIndices(total, this.count);
  }

  readonly onData = (chunk: Buffer): void => {
    let position = 0;
    while (position < chunk.length) {
      const take = Math.min(this.frameBytes - this.offset, chunk.length - position);
      this.current.set(chunk.subarray(position, position + take), this.offset);
      this.offset += take;
      position += take;
      if (this.offset === this.frameBytes) this.completeFrame();
    }
  };

  private completeFrame(): void {
    const index = this.frameIndex;
    const frame = this.current;
    if (this.plan !== null && this.planned !== null) {
      while (this.planCursor < this.plan.length && this.plan[this.planCursor] === index) {
        this.planned.set(frame, this.planCursor * this.frameBytes);
        this.planCursor += 1;
      }
    }
    if (this.reservoir.length === this.capacity && index % this.stride === 0) {
      this.reservoir = this.reservoir.filter((entry) => entry.index % (2 * this.stride) === 0);
      this.stride *= 2;
    }
    if (index % this.stride === 0) {
      this.reservoir.push({ index, data: frame });
      this.current = new Uint8Array(this.frameBytes);
      this.lastFrame = null;
    } else {
      // The buffer just filled becomes the last frame; the previous last frame's buffer is reused.
      const spare = this.lastFrame?.data;
      this.lastFrame = { index, data: frame };
      this.current = spare ?? new Uint8Array(this.frameBytes);
    }
    this.frameIndex += 1;
    this.offset = 0;
  }

  /** True when the result is the plan, that is, exactly what uniformIndices picks for the claimed count. */
  get followedPlan(): boolean {
    return this.plan !== null && this.frameIndex === this.claimed;
  }

  result(): ClipFrames {
    const total = this.frameIndex;
    if (this.followedPlan && this.planned !== null && this.plan !== null) return { data: this.planned, frames: this.plan.length };
    const wanted = this.indicesFor(total);
    const kept = this.lastFrame === null ? this.reservoir : [...this.reservoir, this.lastFrame];
    const data = new Uint8Array(wanted.length * this.frameBytes);
    const lastKept = this.reservoir.length - 1;
    wanted.forEach((ideal, target) => {
      // Reservoir entries sit at multiples of the stride; the kept last frame follows them.
      let choice = Math.min(Math.round(ideal / this.stride), lastKept);
      if (kept.length > this.reservoir.length &&
        Math.abs(kept[kept.length - 1].index - ideal) < Math.abs(kept[choice].index - ideal)) choice = kept.length - 1;
      data.set(kept[choice].data, target * this.frameBytes);
    });
    return { data, frames: wanted.length };
  }
}
