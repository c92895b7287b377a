import { constants as bufferConstants } from 'node:buffer';
import { VideoRNNError } from '../errors';

/** The largest clip a typed array can hold in this Node.js. */
export const largestClipBytes = bufferConstants.MAX_LENGTH;

export function tooLarge(what: string, bytes: number): VideoRNNError {
  return new VideoRNNError('E_INVALID_ARGUMENT', `${what}: the clip would take ${(bytes / 2 ** 30).toFixed(1)} GiB, ` +
    'more than one buffer can hold; set size, fps, maxFrames or frames to decode less');
}

/**
 * Receives raw RGB24 bytes from ffmpeg's pipe, where frame boundaries fall anywhere inside chunks.
 * With a selection, only the chosen frames are copied, straight into the final buffer, so memory stays
 * at the size of the result however long the video is. Without one, every frame is kept.
 */
export class FrameCollector {
  private readonly output: Uint8Array | null;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private cursor = 0;
  private frameIndex = 0;
  private offset = 0;

  constructor(
    private readonly frameBytes: number,
    private readonly selection: readonly number[] | null,
    private readonly what: string,
  ) {
    this.output = selection === null ? null : new Uint8Array(selection.length * frameBytes);
  }

  /** Complete frames received so far. */
  get framesSeen(): number {
    return this.frameIndex;
  }

  readonly onData = (chunk: Buffer): void => {
    if (this.output === null) {
      this.keptBytes += chunk.length;
      if (this.keptBytes > largestClipBytes) throw tooLarge(this.what, this.keptBytes);
      this.kept.push(chunk);
      this.frameIndex = Math.floor(this.keptBytes / this.frameBytes);
      return;
    }
    const selection = this.selection as readonly number[];
    let position = 0;
    while (position < chunk.length) {
      const take = Math.min(this.frameBytes - this.offset, chunk.length - position);
      if (this.cursor < selection.length && selection[this.cursor] === this.frameIndex) {
        this.output.set(chunk.subarray(position, position + take), this.cursor * this.frameBytes + this.offset);
      }
      this.offset += take;
      position += take;
      if (this.offset === this.frameBytes) this.completeFrame(selection, this.output);
    }
  };

  private completeFrame(selection: readonly number[], output: Uint8Array): void {
    if (this.cursor < selection.length && selection[this.cursor] === this.frameIndex) {
      const first = this.cursor * this.frameBytes;
      this.cursor += 1;
      // A short video repeats a frame: copy the one just written instead of waiting for it again.
      while (this.cursor < selection.length && selection[this.cursor] === this.frameIndex) {
        output.copyWithin(this.cursor * this.frameBytes, first, first + this.frameBytes);
        this.cursor += 1;
      }
    }
    this.frameIndex += 1;
    this.offset = 0;
  }

  /** The selected frames; valid when every selected index has arrived. */
  selected(): Uint8Array {
    if (this.output === null) throw new Error('FrameCollector.selected() needs a selection');
    return this.output;
  }

  /** All complete frames, or the given indices of them, in one buffer. */
  all(indices: readonly number[] | null): { data: Uint8Array; frames: number } {
    const frames = this.frameIndex;
    if (indices === null) {
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
    const whole = Buffer.concat(this.kept, this.keptBytes);
    this.kept.length = 0;
    const data = new Uint8Array(indices.length * this.frameBytes);
    indices.forEach((source, target) => {
      data.set(whole.subarray(source * this.frameBytes, (source + 1) * this.frameBytes), target * this.frameBytes);
    });
    return { data, frames: indices.length };
  }
}
