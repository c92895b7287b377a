/**
 * The stream facts decodeVideo needs, read from an AVI file's own header (RIFF `hdrl`) in this
 * process, so that a decode costs one process start (ffmpeg) instead of two (ffprobe, then ffmpeg).
 * The fields are those of Microsoft's AVI RIFF reference (AVIMAINHEADER, AVISTREAMHEADER,
 * BITMAPINFOHEADER). The facts are the ones ffmpeg's `avi` demuxer reports: the frame count is the
 * video stream header's dwLength, the duration dwLength x dwScale / dwRate, the size the
 * BITMAPINFOHEADER's (which must equal the main header's).
 *
 * The reader answers only for the plain layout and says nothing (null) for anything else, which
 * then goes to ffprobe as before: not `RIFF`/`AVI ` first, a RIFF chunk longer than the file (a cut
 * download) or anything after it (OpenDML's `AVIX` extensions), no `hdrl` first or no `movi`, not
 * exactly one video stream, a stream start other than 0, frame counts that disagree, sizes that
 * disagree, a frame rate outside the standard ones (below), and every chunk that does not fit
 * where it claims to be.
 */
import fs from 'node:fs';
import type { VideoStream } from './probe';

const largestHeaderList = 2 ** 20;
const mostChunks = 4096;

interface Chunk {
  id: string;
  /** For LIST and RIFF: the list's type. */
  kind: string;
  /** Payload start and end (after the list type for lists), relative to the buffer. */
  start: number;
  end: number;
}

/** The chunks inside [start, end) of `data` (word-aligned), or null where one does not fit. */
function chunks(data: Buffer, start: number, end: number): Chunk[] | null {
  const found: Chunk[] = [];
  for (let at = start; at < end;) {
    if (end - at < 8 || found.length >= mostChunks) return null;
    const id = data.toString('latin1', at, at + 4);
    const size = data.readUInt32LE(at + 4);
    if (size > end - at - 8) return null;
    const list = id === 'LIST';
    if (list && size < 4) return null;
    found.push({ id, kind: list ? data.toString('latin1', at + 8, at + 12) : '', start: at + (list ? 12 : 8), end: at + 8 + size });
    // Chunks are padded to an even length; the pad byte may be missing at the very end.
    at = Math.min(end, at + 8 + size + (size & 1));
  }
  return found;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * True for the "standard" frame rates: n/12 frames per second up to 30, whole rates from 31 to 60,
 * 80, 120, 240, and 24, 30, 60, 12, 15 and 48 times 1000/1001. Where a demuxer sets no average
 * rate, ffmpeg's stream analysis estimates one from the first packets and snaps it to the nearest
 * of these within 1%; a standard rate comes out unchanged whether that happens or not, so only
 * those are answered here, and ffprobe decides for any other.
 */
function standardRate(numerator: number, denominator: number): boolean {
  if (denominator === 1001) return [24000, 30000, 60000, 12000, 15000, 48000].includes(numerator);
  if (12 % denominator === 0) {
    const twelfths = numerator * (12 / denominator);
    return twelfths <= 360 || (denominator === 1 && (numerator <= 60 || [80, 120, 240].includes(numerator)));
  }
  return false;
}

interface Stream {
  type: string;
  scale: number;
  rate: number;
  start: number;
  length: number;
  width: number;
  height: number;
}

function readStream(data: Buffer, strl: Chunk): Stream | null {
  const inside = chunks(data, strl.start, strl.end);
  if (inside === null) return null;
  const strh = inside.filter((chunk) => chunk.id === 'strh');
  const strf = inside.filter((chunk) => chunk.id === 'strf');
  if (strh.length !== 1 || strh[0].end - strh[0].start < 36) return null;
  const at = strh[0].start;
  const stream: Stream = {
    type: data.toString('latin1', at, at + 4),
    scale: data.readUInt32LE(at + 20),
    rate: data.readUInt32LE(at + 24),
    start: data.readUInt32LE(at + 28),
    length: data.readUInt32LE(at + 32),
    width: 0,
    height: 0,
  };
  if (stream.type === 'vids') {
    if (strf.length !== 1 || strf[0].end - strf[0].start < 40) return null;
    // ffmpeg takes DivX subtitles stored as video ('DXSB', 'DXSA') for subtitles.
    if (['DXSB', 'DXSA'].includes(data.toString('latin1', strf[0].start + 16, strf[0].start + 20))) return null;
    stream.width = data.readInt32LE(strf[0].start + 4);
    // A negative height is a top-down picture of that many rows.
    stream.height = Math.abs(data.readInt32LE(strf[0].start + 8));
  }
  return stream;
}

/** Reads `length` bytes at `position`, or fewer at the end of the file. */
async function readAt(handle: fs.promises.FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** The `hdrl` list's payload, where the file is one whole RIFF AVI chunk with `hdrl` first and a `movi` list. */
async function readHeaderList(handle: fs.promises.FileHandle, size: number): Promise<Buffer | null> {
  const riff = await readAt(handle, 0, 24);
  if (riff.length < 24 || riff.toString('latin1', 0, 4) !== 'RIFF' || riff.toString('latin1', 8, 12) !== 'AVI ') return null;
  const riffSize = riff.readUInt32LE(4);
  // The whole file is the one RIFF chunk (a pad byte aside): no cut, no AVIX after it.
  if (riffSize + 8 !== size && riffSize + 9 !== size) return null;
  if (riff.toString('latin1', 12, 16) !== 'LIST' || riff.toString('latin1', 20, 24) !== 'hdrl') return null;
  const listSize = riff.readUInt32LE(16);
  if (listSize < 4 || listSize > largestHeaderList || 20 + listSize > riffSize + 8) return null;
  let movi = false;
  let at = 20 + listSize + (listSize & 1);
  for (let index = 0; at < riffSize + 8 && !movi; index += 1) {
    if (index >= mostChunks) return null;
    const head = await readAt(handle, at, 12);
    if (head.length < 12) return null;
    const chunkSize = head.readUInt32LE(4);
    if (chunkSize > riffSize + 8 - at - 8) return null;
    movi = head.toString('latin1', 0, 4) === 'LIST' && head.toString('latin1', 8, 12) === 'movi';
    at += 8 + chunkSize + (chunkSize & 1);
  }
  if (!movi) return null;
  const list = await readAt(handle, 24, listSize - 4);
  return list.length === listSize - 4 ? list : null;
}

function readHeader(data: Buffer): VideoStream | null {
  const inside = chunks(data, 0, data.length);
  if (inside === null) return null;
  const avih = inside.filter((chunk) => chunk.id === 'avih');
  if (avih.length !== 1 || avih[0].end - avih[0].start < 40) return null;
  const totalFrames = data.readUInt32LE(avih[0].start + 16);
  const mainWidth = data.readUInt32LE(avih[0].start + 32);
  const mainHeight = data.readUInt32LE(avih[0].start + 36);
  const streams: Stream[] = [];
  for (const strl of inside.filter((chunk) => chunk.id === 'LIST' && chunk.kind === 'strl')) {
    const stream = readStream(data, strl);
    if (stream === null) return null;
    streams.push(stream);
  }
  const video = streams.filter((stream) => stream.type === 'vids');
  // DV in AVI ('iavs', 'ivas') is a video stream to ffmpeg as well.
  if (video.length !== 1 || streams.some((stream) => stream.type === 'iavs' || stream.type === 'ivas')) return null;
  const { scale, rate, start, length, width, height } = video[0];
  if (start !== 0 || scale === 0 || rate === 0 || length === 0 || length > 0x7fffffff) return null;
  if (width <= 0 || height <= 0 || width !== mainWidth || height !== mainHeight) return null;
  // OpenDML's extended header counts all frames; it, the main header and the stream header must agree.
  const odml = inside.filter((chunk) => chunk.id === 'LIST' && chunk.kind === 'odml');
  if (odml.length > 1) return null;
  if (odml.length === 1) {
    const dmlh = chunks(data, odml[0].start, odml[0].end)?.filter((chunk) => chunk.id === 'dmlh');
    if (dmlh === undefined || dmlh.length !== 1 || dmlh[0].end - dmlh[0].start < 4) return null;
    if (data.readUInt32LE(dmlh[0].start) !== length) return null;
  }
  if (totalFrames !== length) return null;
  const divisor = gcd(rate, scale);
  if (!standardRate(rate / divisor, scale / divisor)) return null;
  return {
    // As ffprobe reports it: dwLength ticks of dwScale / dwRate seconds, printed with six decimals.
    duration: Number((length * (scale / rate)).toFixed(6)),
    fps: rate / divisor / (scale / divisor),
    width,
    height,
    frames: length,
    map: '0:V:0',
  };
}

/**
 * The video stream's facts from an AVI header, as probeStream reports them, or null where the reader
 * cannot vouch for them (ffprobe answers then). Rejects nothing itself: limits are checked by the
 * caller, as for ffprobe's report.
 */
export async function readAviIndex(file: string): Promise<VideoStream | null> {
  try {
    const handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) return null;
      const data = await readHeaderList(handle, stats.size);
      return data === null ? null : readHeader(data);
    } finally {
      await handle.close();
    }
  } catch {
    // Unreadable, or a chunk this reader misjudged: ffprobe answers instead.
    return null;
  }
}
