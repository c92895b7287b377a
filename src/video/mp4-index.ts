/**
 * The stream facts decodeVideo needs, read from an MP4/MOV file's own index (its `moov` box) in this
 * process, so that a decode costs one process start (ffmpeg) instead of two (ffprobe, then ffmpeg).
 * ISO/IEC 14496-12 defines the boxes read here. The reader answers only for the plain layout it
 * understands, and says nothing (null) for anything else, which then goes to ffprobe as before:
 * no `ftyp` first, a fragmented file, more or less than one video track, several sample
 * descriptions, a rotation that is not a quarter turn, a movie matrix, a track size that differs
 * from the sample description's, and every box that does not fit where it claims to be.
 *
 * Nothing here is trusted further than ffprobe's report would be: ffmpeg still reads the file under
 * the same guards, the output size is fixed by the filter chain, and the frame count only chooses
 * which frames to keep (src/video/frames.ts copes with a wrong one).
 */
import fs from 'node:fs';
import type { VideoStream } from './probe';


const largestMoov = 32 * 2 ** 20;
const mostTopLevelBoxes = 64;
const mostBoxesInside = 4096;

interface Box {
  type: string;
  /** Payload start and end, relative to the buffer the box was found in. */
  start: number;
  end: number;
}

/** The boxes inside [start, end) of `data`, or null where one does not fit. */
function children(data: Buffer, start: number, end: number): Box[] | null {
  const boxes: Box[] = [];
  let at = start;
  while (at < end) {
    if (end - at < 8 || boxes.length >= mostBoxesInside) return null;
    let size = data.readUInt32BE(at);
    const type = data.toString('latin1', at + 4, at + 8);
    let header = 8;
    if (size === 1) {
      if (end - at < 16) return null;
      const large = data.readBigUInt64BE(at + 8);
      if (large > BigInt(end - at)) return null;
      size = Number(large);
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || size > end - at) return null;
    boxes.push({ type, start: at + header, end: at + size });
    at += size;
  }
  return boxes;
}

function only(boxes: Box[], type: string): Box | null {
  const found = boxes.filter((box) => box.type === type);
  return found.length === 1 ? found[0] : null;
}

function inside(data: Buffer, box: Box | null, type: string): Box | null {
  if (box === null) return null;
  const list = children(data, box.start, box.end);
  return list === null ? null : only(list, type);
}

const unit = 0x10000;
const identity = [unit, 0, 0, 0, unit, 0, 0, 0, 0x40000000];

/**
 * Degrees clockwise that ffprobe reports (its display matrix, normalised to 0..359), for the four
 * quarter turns only; the matrix is [a b u c d v x y w], translation (x, y) ignored.
 */
function quarterTurn(matrix: number[]): number | null {
  const [a, b, u, c, d, v, , , w] = matrix;
  if (u !== 0 || v !== 0 || w !== 0x40000000) return null;
  if (a === unit && b === 0 && c === 0 && d === unit) return 0;
  if (a === 0 && b === unit && c === -unit && d === 0) return 270;
  if (a === -unit && b === 0 && c === 0 && d === -unit) return 180;
  if (a === 0 && b === -unit && c === unit && d === 0) return 90;
  return null;
}

function readMatrix(data: Buffer, at: number): number[] {
  return Array.from({ length: 9 }, (_, index) => data.readInt32BE(at + 4 * index));
}

/**
 * True without a `ctts` box, or with one of version 0 whose offsets are all at least 0: ffmpeg
 * reads the offsets as signed, and newer versions then correct the sample durations (and so the
 * duration they report) where one is negative.
 */
function plainCompositionOffsets(data: Buffer, stbl: Box | null): boolean {
  if (stbl === null) return false;
  const boxes = children(data, stbl.start, stbl.end);
  if (boxes === null) return false;
  const found = boxes.filter((box) => box.type === 'ctts');
  if (found.length === 0) return true;
  if (found.length > 1) return false;
  const ctts = found[0];
  if (ctts.end - ctts.start < 8 || data[ctts.start] !== 0) return false;
  const entries = data.readUInt32BE(ctts.start + 4);
  if (entries > (ctts.end - ctts.start - 8) / 8) return false;
  for (let entry = 0; entry < entries; entry += 1) {
    if (data.readInt32BE(ctts.start + 12 + 8 * entry) < 0) return false;
  }
  return true;
}

interface Track {
  handler: string;
  width: number;
  height: number;
  rotation: number | null;
  timescale: number;
  frames: number;
  sampleTicks: number;
  descriptions: number;
}

function readTrack(data: Buffer, trak: Box): Track | null {
  const tkhd = inside(data, trak, 'tkhd');
  const mdia = inside(data, trak, 'mdia');
  const mdhd = inside(data, mdia, 'mdhd');
  const hdlr = inside(data, mdia, 'hdlr');
  const stbl = inside(data, inside(data, mdia, 'minf'), 'stbl');
  const stsd = inside(data, stbl, 'stsd');
  const stts = inside(data, stbl, 'stts');
  if (tkhd === null || mdhd === null || hdlr === null || stsd === null || stts === null) return null;
  if (!plainCompositionOffsets(data, stbl)) return null;
  if (hdlr.end - hdlr.start < 12) return null;
  const handler = data.toString('latin1', hdlr.start + 8, hdlr.start + 12);

  const tkhdVersion = data[tkhd.start];
  const matrixAt = tkhd.start + (tkhdVersion === 1 ? 52 : 40);
  if (tkhdVersion > 1 || tkhd.end - matrixAt < 44) return null;
  const rotation = quarterTurn(readMatrix(data, matrixAt));
  const trackWidth = data.readUInt32BE(matrixAt + 36) / unit;
  const trackHeight = data.readUInt32BE(matrixAt + 40) / unit;

  const mdhdVersion = data[mdhd.start];
  if (mdhdVersion > 1 || mdhd.end - mdhd.start < (mdhdVersion === 1 ? 32 : 20)) return null;
  const timescale = data.readUInt32BE(mdhd.start + (mdhdVersion === 1 ? 20 : 12));
  const mediaTicks = mdhdVersion === 1 ? Number(data.readBigUInt64BE(mdhd.start + 24)) : data.readUInt32BE(mdhd.start + 16);

  if (stts.end - stts.start < 8) return null;
  const entries = data.readUInt32BE(stts.start + 4);
  if (entries > (stts.end - stts.start - 8) / 8) return null;
  let frames = 0;
  let sampleTicks = 0;
  let lastTicks = 0;
  let lastCount = 0;
  for (let entry = 0; entry < entries; entry += 1) {
    lastCount = data.readUInt32BE(stts.start + 8 + 8 * entry);
    lastTicks = data.readUInt32BE(stts.start + 12 + 8 * entry);
    frames += lastCount;
    sampleTicks += lastTicks * lastCount;
  }
  // Where the media header's duration is not the samples' sum, or the last sample lasts over ten
  // times the average, ffmpeg versions differ in which duration they report: ffprobe decides.
  if (mediaTicks !== sampleTicks) return null;
  if (entries > 1 && lastCount === 1 && lastTicks > 10 * (sampleTicks / frames)) return null;

  if (stsd.end - stsd.start < 8) return null;
  const descriptions = data.readUInt32BE(stsd.start + 4);
  let width = 0;
  let height = 0;
  if (handler === 'vide') {
    // The first sample entry: size, format, 6 reserved, data reference, 16 bytes, then width and height.
    const entry = stsd.start + 8;
    if (stsd.end - entry < 36) return null;
    width = data.readUInt16BE(entry + 32);
    height = data.readUInt16BE(entry + 34);
    if (width !== trackWidth || height !== trackHeight) return null;
  }
  return { handler, width, height, rotation, timescale, frames, sampleTicks, descriptions };
}

/** Reads `length` bytes at `position`, or fewer at the end of the file. */
async function readAt(handle: fs.promises.FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** The `moov` box's payload, where the file starts with `ftyp` and has exactly one `moov` and no fragments. */
async function readMoov(file: string): Promise<Buffer | null> {
  const handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return null;
    let at = 0;
    let moov: { start: number; end: number } | null = null;
    for (let index = 0; at < stats.size; index += 1) {
      if (index >= mostTopLevelBoxes) return null;
      const header = await readAt(handle, at, 16);
      if (header.length < 8) return null;
      const type = header.toString('latin1', 4, 8);
      let size = header.readUInt32BE(0);
      let headerSize = 8;
      if (size === 1) {
        if (header.length < 16) return null;
        const large = header.readBigUInt64BE(8);
        if (large > BigInt(stats.size - at)) return null;
        size = Number(large);
        headerSize = 16;
      } else if (size === 0) {
        size = stats.size - at;
      }
      if (size < headerSize || size > stats.size - at) return null;
      if (index === 0 && type !== 'ftyp') return null;
      if (type === 'moof' || type === 'mfra') return null;
      if (type === 'moov') {
        if (moov !== null) return null;
        moov = { start: at + headerSize, end: at + size };
      }
      at += size;
    }
    if (moov === null || moov.end - moov.start > largestMoov) return null;
    const data = await readAt(handle, moov.start, moov.end - moov.start);
    return data.length === moov.end - moov.start ? data : null;
  } finally {
    await handle.close();
  }
}

/**
 * The first video stream's facts from an MP4/MOV index, as probeStream reports them, or null where
 * the reader cannot vouch for them (ffprobe answers then). Rejects nothing itself: limits are
 * checked by the caller, as for ffprobe's report.
 */
export async function readMp4Index(file: string): Promise<VideoStream | null> {
  try {
    const data = await readMoov(file);
    return data === null ? null : readMovie(data);
  } catch {
    // Unreadable, or a box this reader misjudged: ffprobe answers instead.
    return null;
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function readMovie(data: Buffer): VideoStream | null {
  const boxes = children(data, 0, data.length);
  if (boxes === null || boxes.some((box) => box.type === 'mvex')) return null;
  const mvhd = only(boxes, 'mvhd');
  if (mvhd === null) return null;
  const mvhdMatrixAt = mvhd.start + (data[mvhd.start] === 1 ? 48 : 36);
  if (data[mvhd.start] > 1 || mvhd.end - mvhdMatrixAt < 36) return null;
  if (readMatrix(data, mvhdMatrixAt).some((value, index) => value !== identity[index])) return null;

  const tracks: Track[] = [];
  for (const trak of boxes.filter((box) => box.type === 'trak')) {
    const track = readTrack(data, trak);
    if (track === null) return null;
    tracks.push(track);
  }
  const video = tracks.filter((track) => track.handler === 'vide');
  if (video.length !== 1) return null;
  const { width, height, rotation, timescale, frames, sampleTicks, descriptions } = video[0];
  if (rotation === null || descriptions !== 1 || width <= 0 || height <= 0) return null;
  // ffmpeg counts frames in an int.
  if (timescale <= 0 || frames <= 0 || frames > 0x7fffffff || sampleTicks <= 0 || !Number.isSafeInteger(sampleTicks)) return null;
  // As ffprobe reports them: the duration printed with six decimals (`%f` of ticks x 1/timescale),
  // the rate a fraction reduced within int range (av_reduce), otherwise ffprobe decides.
  const duration = Number((sampleTicks * (1 / timescale)).toFixed(6));
  const divisor = gcd(BigInt(frames) * BigInt(timescale), BigInt(sampleTicks));
  const rateNumerator = BigInt(frames) * BigInt(timescale) / divisor;
  const rateDenominator = BigInt(sampleTicks) / divisor;
  if (rateNumerator > 0x7fffffffn || rateDenominator > 0x7fffffffn) return null;
  const sideways = rotation === 90 || rotation === 270;
  return {
    duration,
    fps: Number(rateNumerator) / Number(rateDenominator),
    width: sideways ? height : width,
    height: sideways ? width : height,
    frames,
    map: '0:V:0',
  };
}
