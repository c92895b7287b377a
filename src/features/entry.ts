// One entry file: a fixed header, a JSON header, the rows, and a SHA-256 over everything before it.
//
//   bytes 0-7    magic "VRNNFEAT"
//   bytes 8-11   format version (uint32 little-endian), ENTRY_VERSION
//   bytes 12-15  length of the JSON header in bytes (uint32 little-endian), padded with spaces so
//                that the rows start at a multiple of 16
//   JSON header  { key, dtype, frames, dim, origin, created, host }
//   rows         frames x dim values, little-endian: float32, or bf16 / fp16 halves
//   last 32      SHA-256 of all the bytes above
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { EntryOrigin, FeatureDtype, StoredFeatures } from './types';
import { fromBf16, fromFp16, toBf16, toFp16 } from './halves';

export const ENTRY_MAGIC = Buffer.from('VRNNFEAT', 'latin1');
export const ENTRY_VERSION = 1;
const FIXED = 16;
const CHECKSUM = 32;
/** A JSON header larger than this is not one of ours (the origin is a few hundred bytes). */
const MAX_HEADER = 1 << 20;

export interface EntryHeader {
  key: string;
  dtype: FeatureDtype;
  frames: number;
  dim: number;
  origin: EntryOrigin;
  created: string;
  host: string;
}

export function bytesPerValue(dtype: FeatureDtype): number {
  return dtype === 'float32' ? 4 : 2;
}

/** Why an entry could not be used; the store warns with it and removes the file. */
export class EntryError extends Error {}

export function encodeEntry(header: EntryHeader, rows: Float32Array): Buffer {
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil((FIXED + json.length) / 16) * 16 - FIXED;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const payload = encodeRows(header.dtype, rows);
  const fixed = Buffer.alloc(FIXED);
  ENTRY_MAGIC.copy(fixed, 0);
  fixed.writeUInt32LE(ENTRY_VERSION, 8);
  fixed.writeUInt32LE(json.length, 12);
  const body = Buffer.concat([fixed, json, payload]);
  const checksum = createHash('sha256').update(body).digest();
  return Buffer.concat([body, checksum]);
}

function encodeRows(dtype: FeatureDtype, rows: Float32Array): Buffer {
  // Copy first: the caller's array may be a view at any offset, and the byte order must be little-endian.
  const copy = Float32Array.from(rows);
  const typed = dtype === 'bf16' ? toBf16(copy) : dtype === 'fp16' ? toFp16(copy) : copy;
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** The file size an entry with this header must have. */
export function entrySize(headerBytes: number, header: Pick<EntryHeader, 'dtype' | 'frames' | 'dim'>): number {
  return FIXED + headerBytes + header.frames * header.dim * bytesPerValue(header.dtype) + CHECKSUM;
}

function parseHeader(fixed: Buffer, json: Buffer | undefined, expectedKey: string): { header: EntryHeader; headerBytes: number } {
  if (fixed.length < FIXED || !fixed.subarray(0, 8).equals(ENTRY_MAGIC)) throw new EntryError('not a feature entry (bad magic)');
  const version = fixed.readUInt32LE(8);
  if (version !== ENTRY_VERSION) throw new EntryError(`entry format version ${version}, expected ${ENTRY_VERSION}`);
  const headerBytes = fixed.readUInt32LE(12);
  if (headerBytes > MAX_HEADER) throw new EntryError(`header of ${headerBytes} bytes`);
  if (json === undefined) return { header: undefined as unknown as EntryHeader, headerBytes };
  if (json.length < headerBytes) throw new EntryError('truncated header');
  let header: EntryHeader;
  try {
    header = JSON.parse(json.subarray(0, headerBytes).toString('utf8')) as EntryHeader;
  } catch {
    throw new EntryError('unreadable JSON header');
  }
  if (header === null || typeof header !== 'object') throw new EntryError('unreadable JSON header');
  if (header.key !== expectedKey) throw new EntryError(`holds key ${String(header.key).slice(0, 16)}..., not the one its name says`);
  if (header.dtype !== 'float32' && header.dtype !== 'bf16' && header.dtype !== 'fp16') throw new EntryError('unknown dtype');
  if (!Number.isSafeInteger(header.frames) || header.frames < 0 || !Number.isSafeInteger(header.dim) || header.dim < 0) {
    throw new EntryError('bad frames or dim');
  }
  if (header.origin === null || typeof header.origin !== 'object' || typeof header.origin.backbone !== 'string') {
    throw new EntryError('no origin');
  }
  return { header, headerBytes };
}

/** Reads and checks a whole entry; throws EntryError when it is not a sound entry named `key`. */
export function decodeEntry(bytes: Buffer, key: string): StoredFeatures & { header: EntryHeader } {
  if (bytes.length < FIXED + CHECKSUM) throw new EntryError(`truncated (${bytes.length} bytes)`);
  const { headerBytes } = parseHeader(bytes.subarray(0, FIXED), undefined, key);
  if (bytes.length < FIXED + headerBytes + CHECKSUM) throw new EntryError('truncated header');
  const { header } = parseHeader(bytes.subarray(0, FIXED), bytes.subarray(FIXED, FIXED + headerBytes), key);
  const size = entrySize(headerBytes, header);
  if (bytes.length !== size) throw new EntryError(`${bytes.length} bytes, expected ${size} (truncated or extended)`);
  const body = bytes.subarray(0, size - CHECKSUM);
  const checksum = createHash('sha256').update(body).digest();
  if (!checksum.equals(bytes.subarray(size - CHECKSUM))) throw new EntryError('checksum mismatch');
  const count = header.frames * header.dim;
  const data = new Float32Array(count);
  const payload = body.subarray(FIXED + headerBytes);
  if (header.dtype === 'float32') {
    new Uint8Array(data.buffer).set(payload);
  } else {
    const halves = new Uint16Array(count);
    new Uint8Array(halves.buffer).set(payload);
    if (header.dtype === 'bf16') fromBf16(halves, data);
    else fromFp16(halves, data);
  }
  return { frames: header.frames, dim: header.dim, data, origin: header.origin, header };
}

/**
 * Reads only an entry's headers (not its rows) and checks that the file has the size they promise:
 * enough for stats and prune, which must not read gigabytes. The checksum is not verified.
 */
export async function readEntryHeader(file: string, key: string): Promise<{ header: EntryHeader; size: number }> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const fixed = Buffer.alloc(FIXED);
    const { bytesRead } = await handle.read(fixed, 0, FIXED, 0);
    const { headerBytes } = parseHeader(fixed.subarray(0, bytesRead), undefined, key);
    const json = Buffer.alloc(Math.min(headerBytes, Math.max(0, size - FIXED)));
    await handle.read(json, 0, json.length, FIXED);
    const { header } = parseHeader(fixed, json, key);
    const expected = entrySize(headerBytes, header);
    if (size !== expected) throw new EntryError(`${size} bytes, expected ${expected} (truncated or extended)`);
    return { header, size };
  } finally {
    await handle.close();
  }
}
