/**
 * Reading EBML (RFC 8794), the binary layout of Matroska and WebM: variable-length integers,
 * element headers, and a file read in bounded windows. Every function answers null for anything
 * that does not fit; nothing here trusts a size further than the bytes it was read from.
 */
import type fs from 'node:fs';

/** Most bytes read from the file in all, and most elements visited. */
const mostBytesRead = 512 * 2 ** 20;
const mostElements = 1 << 20;
/** Elements read whole (Info, Tracks, Tags) are at most this large. */
const largestHeaderElement = 2 ** 20;
const windowBytes = 16 * 1024;

/** A variable-length integer at `at`: its length and value (marker bit kept for IDs), or null. */
export function vint(data: Buffer, at: number, end: number, keepMarker: boolean): { length: number; value: number; unknown: boolean } | null {
  if (at >= end) return null;
  const first = data[at];
  if (first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (length > 8 || at + length > end) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let index = 1; index < length; index += 1) {
    value = value * 256 + data[at + index];
    if (data[at + index] !== 0xff) allOnes = false;
  }
  // Sizes past 2^53 cannot fit in any file read here; they count as unknown and are refused.
  return { length, value, unknown: !keepMarker && (allOnes || !Number.isSafeInteger(value)) };
}

export interface Element {
  id: number;
  /** Payload start and end, in the same coordinates as the data the header was read from. */
  start: number;
  end: number;
}

/** The element header at `at` in `data` (an ID of at most 4 bytes, a known size that fits before `end`), or null. */
export function header(data: Buffer, at: number, end: number, base = 0, limit = end): Element | null {
  const id = vint(data, at, end, true);
  if (id === null || id.length > 4) return null;
  const size = vint(data, at + id.length, end, false);
  if (size === null || size.unknown) return null;
  const start = base + at + id.length + size.length;
  if (size.value > base + limit - start) return null;
  return { id: id.value, start, end: start + size.value };
}

/** The elements inside [start, end) of `data`, or null where one does not fit. */
export function children(data: Buffer, start: number, end: number): Element[] | null {
  const found: Element[] = [];
  for (let at = start; at < end;) {
    const element = header(data, at, end);
    if (element === null || found.length >= 4096) return null;
    found.push(element);
    at = element.end;
  }
  return found;
}

export function unsigned(data: Buffer, element: Element): number | null {
  const length = element.end - element.start;
  if (length > 7) return null;
  let value = 0;
  for (let index = element.start; index < element.end; index += 1) value = value * 256 + data[index];
  return value;
}

export function float(data: Buffer, element: Element): number | null {
  const length = element.end - element.start;
  if (length === 4) return data.readFloatBE(element.start);
  if (length === 8) return data.readDoubleBE(element.start);
  return null;
}

export function text(data: Buffer, element: Element): string {
  const raw = data.toString('latin1', element.start, element.end);
  const nul = raw.indexOf('\0');
  return nul >= 0 ? raw.slice(0, nul) : raw;
}

/** The one child with `id`, undefined without one, null with several. */
export function single(list: Element[], id: number): Element | undefined | null {
  const found = list.filter((element) => element.id === id);
  return found.length > 1 ? null : found[0];
}

/**
 * Reads through a file in windows, counting bytes and elements against the bounds. The hot loop
 * over blocks calls need() and awaits only when it answers a promise, so that the headers inside a
 * window cost no promise each.
 */
export class FileWindow {
  private buffer = Buffer.alloc(0);
  private bufferAt = 0;
  private bytesRead = 0;
  private elements = 0;

  constructor(private readonly handle: fs.promises.FileHandle, readonly size: number, private readonly signal?: AbortSignal) {}

  /** Makes `length` bytes at `at` (fewer at the end of the file) readable by view(); null when they already are. */
  need(at: number, length: number): Promise<void> | null {
    const wanted = Math.min(length, this.size - at);
    return at >= this.bufferAt && at + wanted <= this.bufferAt + this.buffer.length ? null : this.load(at, wanted);
  }

  private async load(at: number, length: number): Promise<void> {
    const want = Math.min(Math.max(length, windowBytes), this.size - at);
    if (want < 0 || this.bytesRead + want > mostBytesRead) throw new Error('read bound');
    // An abort stops the walk between reads; the caller then reports it.
    if (this.signal?.aborted === true) throw new Error('aborted');
    const buffer = Buffer.alloc(want);
    const { bytesRead } = await this.handle.read(buffer, 0, want, at);
    this.bytesRead += want;
    this.buffer = buffer.subarray(0, bytesRead);
    this.bufferAt = at;
  }

  /** The window and where file position `at` is in it, after need(). */
  view(at: number): { data: Buffer; offset: number } {
    return { data: this.buffer, offset: at - this.bufferAt };
  }

  /** The element header at file position `at`, inside [at, end), or null; after need(at, 12). */
  elementAt(at: number, end: number): Element | null {
    this.elements += 1;
    if (this.elements > mostElements) throw new Error('element bound');
    const offset = at - this.bufferAt;
    return header(this.buffer, offset, Math.min(this.buffer.length, offset + end - at), at - offset, offset + end - at);
  }

  async element(at: number, end: number): Promise<Element | null> {
    await this.need(at, 12);
    return this.elementAt(at, end);
  }

  /** An element's whole payload, for small ones only. */
  async payload(element: Element): Promise<Buffer | null> {
    const length = element.end - element.start;
    if (length > largestHeaderElement) return null;
    await this.need(element.start, length);
    const { data, offset } = this.view(element.start);
    return data.length - offset >= length ? Buffer.from(data.subarray(offset, offset + length)) : null;
  }
}
