/**
 * The stream facts decodeVideo needs, read from a Matroska or WebM file in this process, so that a
 * decode costs one process start (ffmpeg) instead of ffprobe's two (its report, then its packet
 * count) plus ffmpeg's. RFC 9559 defines the elements read here; WebM is a subset of Matroska.
 *
 * Matroska's header has no frame count, so the reader counts the video track's blocks (and the
 * frames laced inside each), walking the Clusters' element headers without reading the frames:
 * the count ffprobe's `-count_packets` gives. The facts are the ones ffmpeg's `matroska` demuxer
 * reports: the size from PixelWidth/PixelHeight, the frame rate from DefaultDuration (reduced as
 * ffmpeg does), the duration from the Segment's Duration and TimestampScale.
 *
 * The reader answers only for the plain layout it understands, and says nothing (null) for anything
 * else, which then goes to ffprobe as before: a DocType other than matroska or webm, an element of
 * unknown size, an element that does not fit inside its parent or the file, not exactly one Info,
 * one Tracks and one enabled video track, a codec not in the list below, ContentEncoding
 * (compression, encryption), a stereo mode, a projection, cropping, a display size other than the
 * picture's, a tag named `rotate`, no DefaultDuration or Duration, and more elements or bytes
 * than the bounds below.
 * Memory and reads stay bounded whatever the file claims.
 */
import fs from 'node:fs';
import type { VideoStream } from './probe';

/** Most bytes read from the file in all, and most elements visited. */
const mostBytesRead = 512 * 2 ** 20;
const mostElements = 1 << 20;
/** Info and Tracks are read whole; larger ones go to ffprobe. */
const largestHeaderElement = 2 ** 20;
const windowBytes = 16 * 1024;

const ids = {
  ebml: 0x1a45dfa3, ebmlReadVersion: 0x42f7, docType: 0x4282, docReadVersion: 0x4285, maxIdLength: 0x42f2,
  maxSizeLength: 0x42f3,
  segment: 0x18538067, info: 0x1549a966, tracks: 0x1654ae6b, cluster: 0x1f43b675, tags: 0x1254c367,
  tag: 0x7373, simpleTag: 0x67c8, tagName: 0x45a3,
  timestampScale: 0x2ad7b1, duration: 0x4489,
  trackEntry: 0xae, trackNumber: 0xd7, trackType: 0x83, codecId: 0x86, defaultDuration: 0x23e383,
  flagEnabled: 0xb9, contentEncodings: 0x6d80, video: 0xe0,
  pixelWidth: 0xb0, pixelHeight: 0xba, displayWidth: 0x54b0, displayHeight: 0x54ba, displayUnit: 0x54b2,
  stereoMode: 0x53b8, projection: 0x7670, cropBottom: 0x54aa, cropTop: 0x54bb, cropLeft: 0x54cc, cropRight: 0x54dd,
  simpleBlock: 0xa3, blockGroup: 0xa0, block: 0xa1,
} as const;

/** Codecs whose blocks ffmpeg hands on one packet each (per laced frame), as counted here. */
const knownCodecs = new Set([
  'V_MPEG4/ISO/AVC', 'V_MPEGH/ISO/HEVC', 'V_VP8', 'V_VP9', 'V_AV1', 'V_MPEG4/ISO/ASP', 'V_MPEG4/ISO/SP', 'V_MJPEG',
]);

/** A variable-length integer at `at`: its length and value (marker bit kept for IDs), or null. */
function vint(data: Buffer, at: number, end: number, keepMarker: boolean): { length: number; value: number; unknown: boolean } | null {
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

interface Element {
  id: number;
  /** Payload start and end, in the same coordinates as the data the header was read from. */
  start: number;
  end: number;
}

/** The element header at `at` in `data` (an ID of at most 4 bytes, a known size that fits before `end`), or null. */
function header(data: Buffer, at: number, end: number, base = 0, limit = end): Element | null {
  const id = vint(data, at, end, true);
  if (id === null || id.length > 4) return null;
  const size = vint(data, at + id.length, end, false);
  if (size === null || size.unknown) return null;
  const start = base + at + id.length + size.length;
  if (size.value > base + limit - start) return null;
  return { id: id.value, start, end: start + size.value };
}

/** The elements inside [start, end) of `data`, or null where one does not fit. */
function children(data: Buffer, start: number, end: number): Element[] | null {
  const found: Element[] = [];
  for (let at = start; at < end;) {
    const element = header(data, at, end);
    if (element === null || found.length >= 4096) return null;
    found.push(element);
    at = element.end;
  }
  return found;
}

function unsigned(data: Buffer, element: Element): number | null {
  const length = element.end - element.start;
  if (length > 7) return null;
  let value = 0;
  for (let index = element.start; index < element.end; index += 1) value = value * 256 + data[index];
  return value;
}

function float(data: Buffer, element: Element): number | null {
  const length = element.end - element.start;
  if (length === 4) return data.readFloatBE(element.start);
  if (length === 8) return data.readDoubleBE(element.start);
  return null;
}

function text(data: Buffer, element: Element): string {
  const raw = data.toString('latin1', element.start, element.end);
  const nul = raw.indexOf('\0');
  return nul >= 0 ? raw.slice(0, nul) : raw;
}

/** The one child with `id`, undefined without one, null with several. */
function single(list: Element[], id: number): Element | undefined | null {
  const found = list.filter((element) => element.id === id);
  return found.length > 1 ? null : found[0];
}

/**
 * Reads through a file in windows, counting bytes and elements against the bounds. The hot loop
 * over blocks calls need() and awaits only when it answers a promise, so that the headers inside a
 * window cost no promise each.
 */
class FileWindow {
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

interface VideoTrack {
  number: number;
  width: number;
  height: number;
  defaultDuration: number;
}

/** The one enabled video track of a Tracks payload, as far as this reader vouches for it, or null. */
function videoTrack(data: Buffer): VideoTrack | null {
  const entries = children(data, 0, data.length);
  if (entries === null) return null;
  const numbers = new Set<number>();
  let found: VideoTrack | null = null;
  let videoTracks = 0;
  for (const entry of entries.filter((element) => element.id === ids.trackEntry)) {
    const fields = children(data, entry.start, entry.end);
    if (fields === null) return null;
    const number = single(fields, ids.trackNumber);
    const type = single(fields, ids.trackType);
    if (!number || !type) return null;
    const trackNumber = unsigned(data, number);
    if (trackNumber === null || trackNumber === 0 || numbers.has(trackNumber)) return null;
    numbers.add(trackNumber);
    if (unsigned(data, type) !== 1) continue;
    videoTracks += 1;
    if (videoTracks > 1) return null;
    const codec = single(fields, ids.codecId);
    const enabled = single(fields, ids.flagEnabled);
    const frameDuration = single(fields, ids.defaultDuration);
    const video = single(fields, ids.video);
    if (!codec || !knownCodecs.has(text(data, codec))) return null;
    if (enabled === null || (enabled !== undefined && unsigned(data, enabled) !== 1)) return null;
    if (single(fields, ids.contentEncodings) !== undefined || !frameDuration || !video) return null;
    const settings = children(data, video.start, video.end);
    if (settings === null) return null;
    const value = (id: number): number | undefined | null => {
      const element = single(settings, id);
      return element === undefined ? undefined : element === null ? null : unsigned(data, element);
    };
    const width = value(ids.pixelWidth);
    const height = value(ids.pixelHeight);
    if (typeof width !== 'number' || typeof height !== 'number' || width <= 0 || height <= 0) return null;
    const displayWidth = value(ids.displayWidth);
    const displayHeight = value(ids.displayHeight);
    if ((displayWidth !== undefined && displayWidth !== width) || (displayHeight !== undefined && displayHeight !== height)) return null;
    if (![undefined, 0].includes(value(ids.displayUnit) as number | undefined)) return null;
    if (![undefined, 0].includes(value(ids.stereoMode) as number | undefined)) return null;
    if (single(settings, ids.projection) !== undefined) return null;
    for (const crop of [ids.cropBottom, ids.cropTop, ids.cropLeft, ids.cropRight]) {
      if (![undefined, 0].includes(value(crop) as number | undefined)) return null;
    }
    const defaultDuration = unsigned(data, frameDuration);
    // Between 10,000 and 1/10 frames per second; anything else goes to ffprobe.
    if (defaultDuration === null || defaultDuration < 100_000 || defaultDuration > 10_000_000_000) return null;
    found = { number: trackNumber, width, height, defaultDuration };
  }
  return found;
}

/**
 * True where a tag is named `rotate` (in any case): ffprobe reports such a tag, and older ffmpeg
 * versions took it for a rotation, so ffprobe decides.
 */
function namesRotation(data: Buffer, start: number, end: number, depth = 0): boolean | null {
  const list = children(data, start, end);
  if (list === null || depth > 8) return null;
  for (const element of list) {
    if (element.id === ids.tagName && text(data, element).toLowerCase() === 'rotate') return true;
    if (element.id === ids.tag || element.id === ids.simpleTag) {
      const inner = namesRotation(data, element.start, element.end, depth + 1);
      if (inner !== false) return inner;
    }
  }
  return false;
}

/** Segment Info: the duration in microseconds as ffmpeg keeps it, or null. */
function infoDuration(data: Buffer): number | null {
  const fields = children(data, 0, data.length);
  if (fields === null) return null;
  const scaleElement = single(fields, ids.timestampScale);
  const durationElement = single(fields, ids.duration);
  if (scaleElement === null || !durationElement) return null;
  const scale = scaleElement === undefined ? 1_000_000 : unsigned(data, scaleElement);
  const duration = float(data, durationElement);
  if (scale === null || scale <= 0 || duration === null || !(duration > 0) || !Number.isFinite(duration)) return null;
  // matroskadec: duration * time_scale * 1000 / AV_TIME_BASE in doubles, kept as an int64 of microseconds.
  const microseconds = Math.trunc(duration * scale * 1000 / 1_000_000);
  return microseconds > 0 && Number.isSafeInteger(microseconds) ? microseconds : null;
}

/** Frames of `track` in the Cluster's payload [start, end): a block's laced frames count one each. */
async function countBlocks(file: FileWindow, start: number, end: number, track: number): Promise<number | null> {
  let frames = 0;
  for (let at = start; at < end;) {
    const pending = file.need(at, 12);
    if (pending !== null) await pending;
    const element = file.elementAt(at, end);
    if (element === null) return null;
    let block: Element | null = element.id === ids.simpleBlock ? element : null;
    if (element.id === ids.blockGroup) {
      for (let inner = element.start; inner < element.end;) {
        const waiting = file.need(inner, 12);
        if (waiting !== null) await waiting;
        const child = file.elementAt(inner, element.end);
        if (child === null) return null;
        if (child.id === ids.block) {
          if (block !== null) return null;
          block = child;
        }
        inner = child.end;
      }
      if (block === null) return null;
    }
    if (block !== null) {
      const reading = file.need(block.start, Math.min(13, block.end - block.start));
      if (reading !== null) await reading;
      const { data, offset } = file.view(block.start);
      const limit = offset + Math.min(data.length - offset, block.end - block.start);
      const number = vint(data, offset, limit, false);
      if (number === null || number.unknown || offset + number.length + 3 > limit) return null;
      if (number.value === track) {
        const flags = data[offset + number.length + 2];
        const laced = (flags & 0x06) !== 0;
        if (laced && offset + number.length + 4 > limit) return null;
        frames += laced ? data[offset + number.length + 3] + 1 : 1;
      }
    }
    at = element.end;
  }
  return frames;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** ffmpeg's av_reduce: the nearest fraction with numerator and denominator at most `max` (continued fractions). */
export function reduceRational(num: bigint, den: bigint, max: bigint): [bigint, bigint] {
  const divisor = gcd(num, den);
  if (divisor !== 0n) {
    num /= divisor;
    den /= divisor;
  }
  if (num <= max && den <= max) return [num, den];
  let [a0n, a0d, a1n, a1d] = [0n, 1n, 1n, 0n];
  while (den !== 0n) {
    let x = num / den;
    const nextDen = num - den * x;
    const a2n = x * a1n + a0n;
    const a2d = x * a1d + a0d;
    if (a2n > max || a2d > max) {
      if (a1n !== 0n) x = (max - a0n) / a1n;
      if (a1d !== 0n) x = x < (max - a0d) / a1d ? x : (max - a0d) / a1d;
      if (den * (2n * x * a1d + a0d) > num * a1d) [a1n, a1d] = [x * a1n + a0n, x * a1d + a0d];
      break;
    }
    [a0n, a0d, a1n, a1d] = [a1n, a1d, a2n, a2d];
    [num, den] = [den, nextDen];
  }
  return [a1n, a1d];
}

async function readSegment(file: FileWindow): Promise<VideoStream | null> {
  const ebml = await file.element(0, file.size);
  if (ebml === null || ebml.id !== ids.ebml) return null;
  const ebmlData = await file.payload(ebml);
  const ebmlFields = ebmlData === null ? null : children(ebmlData, 0, ebmlData.length);
  if (ebmlData === null || ebmlFields === null) return null;
  const docType = single(ebmlFields, ids.docType);
  if (!docType || !['matroska', 'webm'].includes(text(ebmlData, docType))) return null;
  // ffmpeg refuses EBML read versions past 1 and DocType read versions past 3.
  for (const [id, most] of [[ids.ebmlReadVersion, 1], [ids.docReadVersion, 3], [ids.maxIdLength, 4], [ids.maxSizeLength, 8]]) {
    const element = single(ebmlFields, id);
    if (element === null) return null;
    const value = element === undefined ? 0 : unsigned(ebmlData, element);
    if (value === null || value > most) return null;
  }

  const segment = await file.element(ebml.end, file.size);
  // Nothing may follow the Segment: ffmpeg would read on into it.
  if (segment === null || segment.id !== ids.segment || segment.end !== file.size) return null;
  let microseconds: number | undefined;
  let track: VideoTrack | undefined;
  let frames = 0;
  for (let at = segment.start; at < segment.end;) {
    const element = await file.element(at, segment.end);
    if (element === null) return null;
    if (element.id === ids.info) {
      if (microseconds !== undefined) return null;
      const data = await file.payload(element);
      const read = data === null ? null : infoDuration(data);
      if (read === null) return null;
      microseconds = read;
    } else if (element.id === ids.tracks) {
      if (track !== undefined) return null;
      const data = await file.payload(element);
      const read = data === null ? null : videoTrack(data);
      if (read === null) return null;
      track = read;
    } else if (element.id === ids.tags) {
      const data = await file.payload(element);
      if (data === null || namesRotation(data, 0, data.length) !== false) return null;
    } else if (element.id === ids.cluster) {
      // Tracks come before the first Cluster (ffmpeg needs them there too).
      if (track === undefined) return null;
      const counted = await countBlocks(file, element.start, element.end, track.number);
      if (counted === null) return null;
      frames += counted;
    }
    at = element.end;
  }
  if (microseconds === undefined || track === undefined) return null;
  // ffmpeg counts frames in an int.
  if (frames <= 0 || frames > 0x7fffffff) return null;
  // As ffprobe reports them: the rate av_reduce(1e9, DefaultDuration, 30000); the format's duration
  // (the stream has none) printed with six decimals.
  const [rateNumerator, rateDenominator] = reduceRational(1_000_000_000n, BigInt(track.defaultDuration), 30000n);
  if (rateNumerator <= 0n || rateDenominator <= 0n) return null;
  return {
    duration: Number((microseconds * (1 / 1_000_000)).toFixed(6)),
    fps: Number(rateNumerator) / Number(rateDenominator),
    width: track.width,
    height: track.height,
    frames,
    map: '0:V:0',
  };
}

/**
 * The video stream's facts from a Matroska or WebM file, as probeStream reports them, or null where
 * the reader cannot vouch for them (ffprobe answers then), or once `signal` is aborted. Rejects
 * nothing itself: limits are checked by the caller, as for ffprobe's report.
 */
export async function readMatroskaIndex(file: string, signal?: AbortSignal): Promise<VideoStream | null> {
  try {
    const handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) return null;
      return await readSegment(new FileWindow(handle, stats.size, signal));
    } finally {
      await handle.close();
    }
  } catch {
    // Unreadable, past a bound, or an element this reader misjudged: ffprobe answers instead.
    return null;
  }
}
