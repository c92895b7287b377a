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
 * than the bounds of src/video/ebml.ts.
 * Memory and reads stay bounded whatever the file claims.
 */
import fs from 'node:fs';
import { type Element, FileWindow, children, float, single, text, unsigned, vint } from './ebml';
import type { VideoStream } from './probe';

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
