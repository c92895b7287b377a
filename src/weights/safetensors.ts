import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TensorMap } from '../clip';
import { invalidArgument, VideoRNNError } from '../errors';
import { DTYPE_SIZES, HOST_IS_LITTLE_ENDIAN, isDType, toFloat32, type DType } from './dtype';
import { WeightsFile } from './file';

/**
 * safetensors (huggingface/safetensors, README "Format"): a little-endian u64 header length N,
 * N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
 * then the little-endian tensor bytes, offsets relative to the end of the header.
 */

// The reference implementation refuses headers above 100 MB; so do we.
const MAX_HEADER_BYTES = 100_000_000;
const MAX_DIMENSIONS = 32;
const METADATA_KEY = '__metadata__';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface SafetensorsContent {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function readSafetensors(path: string): Promise<SafetensorsContent> {
  return WeightsFile.use(path, (file) => readSafetensorsFile(file));
}

function parseEntry(file: WeightsFile, name: string, info: unknown, dataSize: number): Entry {
  if (!isPlainObject(info)) throw file.error(`tensor ${name} has no description in the header`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (!isDType(dtype)) throw file.error(`tensor ${name} has an unsupported dtype ${JSON.stringify(dtype)?.slice(0, 20)}`);
  if (!Array.isArray(shape) || shape.length > MAX_DIMENSIONS || !shape.every(isCount)) {
    throw file.error(`tensor ${name} has a shape that is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1] ||
      offsets[1] > dataSize) {
    throw file.error(`tensor ${name} has data_offsets outside the ${dataSize}-byte data section`);
  }
  const [begin, end] = offsets as [number, number];
  // Stop multiplying once past exact integers: such a product can only be a mismatch, and must
  // not round into a plausible size. A zero dimension makes any other size harmless.
  let bytes = (shape as number[]).includes(0) ? 0 : DTYPE_SIZES[dtype];
  for (const size of shape as number[]) {
    bytes *= size;
    if (!Number.isSafeInteger(bytes)) break;
  }
  if (bytes !== end - begin) {
    const needs = Number.isSafeInteger(bytes) ? `${bytes} bytes` : 'more than the file holds';
    throw file.error(`tensor ${name}: shape [${shape}] of ${dtype} needs ${needs}, but its data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Where each tensor of a safetensors file lies: absolute byte offset, length, dtype and shape. */
export interface TensorRange {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  bytes: number;
}

export interface SafetensorsIndex {
  ranges: TensorRange[];
  metadata: Record<string, string>;
}

/**
 * Reads and checks the header only: every tensor's range lies in the file, matches its shape and
 * dtype, and the ranges tile the data section. Nothing of the tensor data is read.
 */
export async function indexSafetensorsFile(file: WeightsFile): Promise<SafetensorsIndex> {
  if (file.size < 8) throw file.error('is too short to be a safetensors file');
  const lengthBytes = await file.read(0, 8, 'the header length');
  const headerLength = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, file.size - 8))) {
    throw file.error(`declares a ${headerLength}-byte header, more than ${file.size < MAX_HEADER_BYTES ? 'the file holds' : 'the 100 MB limit'}`);
  }
  const dataStart = 8 + Number(headerLength);
  const dataSize = file.size - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(utf8.decode(await file.read(8, dataStart - 8, 'the header')));
  } catch (error) {
    if (error instanceof VideoRNNError) throw error;
    throw file.error('has a header that is not UTF-8 JSON (not a safetensors file?)');
  }
  if (!isPlainObject(header)) throw file.error('has a header that is not a JSON object');

  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(info) || !Object.values(info).every((value) => typeof value === 'string')) {
        throw file.error('has __metadata__ that is not a map of strings');
      }
      // fromEntries defines own properties, so a "__proto__" key stays data.
      metadata = Object.fromEntries(Object.entries(info)) as Record<string, string>;
      continue;
    }
    entries.push(parseEntry(file, name, info, dataSize));
  }

  // As the format requires, the ranges must tile the data section: no overlaps, no holes, so no
  // byte is read twice and no bytes hide between tensors.
  const ordered = [...entries].sort((first, second) => first.begin - second.begin || first.end - second.end);
  let cursor = 0;
  for (const entry of ordered) {
    if (entry.begin !== cursor) {
      throw file.error(entry.begin < cursor ? `tensor ${entry.name} overlaps another tensor`
        : `has ${entry.begin - cursor} unused bytes before tensor ${entry.name}`);
    }
    cursor = entry.end;
  }
  if (cursor !== dataSize) throw file.error(`has ${dataSize - cursor} bytes after its last tensor`);

  return { ranges: entries.map(({ name, dtype, shape, begin, end }) => ({ name, dtype, shape, offset: dataStart + begin, bytes: end - begin })), metadata };
}

export async function readSafetensorsFile(file: WeightsFile): Promise<SafetensorsContent> {
  const { ranges, metadata } = await indexSafetensorsFile(file);
  const tensors: TensorMap = new Map();
  for (const range of ranges) {
    const bytes = await file.read(range.offset, range.bytes, `tensor ${range.name}`, new Uint8Array(range.bytes));
    if (range.dtype !== 'F32') file.reserveTensorBytes((range.bytes / DTYPE_SIZES[range.dtype]) * 4, `tensor ${range.name}`);
    tensors.set(range.name, { shape: range.shape, data: toFloat32(bytes, range.dtype, true) });
  }
  return { tensors, metadata };
}

function headerFor(names: string[], tensors: TensorMap, metadata: Record<string, string>): Uint8Array {
  // Built by hand so that key order is exactly ours: a JS object would move names like "0" first.
  const fields: string[] = [];
  if (Object.keys(metadata).length > 0) fields.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const name of names) {
    const tensor = tensors.get(name)!;
    const end = offset + tensor.data.byteLength;
    fields.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: 'F32', shape: tensor.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  // Pad with spaces (allowed by the format) so the data starts 8-byte aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

function checkTensors(tensors: TensorMap, metadata: Record<string, string>): string[] {
  if (!(tensors instanceof Map)) throw invalidArgument('tensors', 'a Map of name to { shape, data }', tensors);
  if (!isPlainObject(metadata)) throw invalidArgument('metadata', 'an object of strings', metadata);
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw invalidArgument(`metadata.${key}`, 'a string', value);
  }
  for (const [name, tensor] of tensors) {
    if (typeof name !== 'string' || name.length === 0 || name === METADATA_KEY) {
      throw invalidArgument('tensor name', `a non-empty string other than ${METADATA_KEY}`, name);
    }
    if (!isPlainObject(tensor) || !(tensor.data instanceof Float32Array) || !Array.isArray(tensor.shape) ||
        !tensor.shape.every(isCount)) {
      throw invalidArgument(`tensor ${name}`, '{ shape: non-negative integers, data: Float32Array }', tensor);
    }
    const numel = tensor.shape.reduce((product, size) => product * size, 1);
    if (numel !== tensor.data.length) {
      throw invalidArgument(`tensor ${name}`, `data of ${numel} elements for shape [${tensor.shape}]`, tensor.data.length);
    }
  }
  return [...tensors.keys()].sort();
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

// Bounds the extra memory used to byte-swap on big-endian hosts.
const SWAP_CHUNK_ELEMENTS = 1 << 20;

async function writeTensor(handle: FileHandle, data: Float32Array): Promise<void> {
  if (HOST_IS_LITTLE_ENDIAN) {
    await writeAll(handle, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return;
  }
  for (let start = 0; start < data.length; start += SWAP_CHUNK_ELEMENTS) {
    const chunk = data.subarray(start, start + SWAP_CHUNK_ELEMENTS);
    const bytes = Buffer.alloc(chunk.byteLength);
    for (let index = 0; index < chunk.length; index++) bytes.writeFloatLE(chunk[index], index * 4);
    await writeAll(handle, bytes);
  }
}

/**
 * Writes float32 tensors (sorted by name) and string metadata as a safetensors file, atomically:
 * into a temporary file beside the target, flushed to disk, then renamed over it, so a crash
 * leaves the old file or the new one, never a torn one. Bad arguments: E_INVALID_ARGUMENT;
 * I/O failures: E_CHECKPOINT (the temporary file is removed).
 */
export async function writeSafetensors(path: string, tensors: TensorMap, metadata: Record<string, string> = {}): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path', 'a non-empty string', path);
  const names = checkTensors(tensors, metadata);
  const header = headerFor(names, tensors, metadata);
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx');
    await writeAll(handle, header);
    for (const name of names) await writeTensor(handle, tensors.get(name)!.data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new VideoRNNError('E_CHECKPOINT', `cannot write ${path} (${code}): ${(error as Error).message}`, { cause: error });
  }
  await syncDirectory(dirname(path));
}

async function syncDirectory(directory: string): Promise<void> {
  // Makes the rename itself durable. Some file systems (and Windows) refuse to open or flush a
  // directory; the file's own data is flushed already, so that is not an error worth failing on.
  let handle: FileHandle | undefined;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch {
    // best effort, see above
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
