// Shared by the weights tests and bench/fuzz-weights.mjs: Python-generated fixtures, exact
// comparison, and builders for hand-made (hostile) safetensors, torch zip and legacy files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./weights.fixtures.py', import.meta.url));

export function temporaryDirectory(label) {
  return mkdtempSync(join(tmpdir(), `video-rnn-${label}-`));
}

export function removeDirectory(directory) {
  rmSync(directory, { recursive: true, force: true });
}

/** Runs the Python generator; returns its manifest. */
export function generate(command, directory, ...rest) {
  execFileSync(PYTHON, [SCRIPT, command, directory, ...rest], { stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(readFileSync(join(directory, 'manifest.json'), 'utf8'));
}

export function sha256(data) {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

/** Every tensor Python described is there with its shape and exactly its values, and no other. */
export function assertTensorsEqual(tensors, expected, label) {
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected).sort(), `${label}: tensor names`);
  for (const [name, { shape, sha256: digest }] of Object.entries(expected)) {
    const tensor = tensors.get(name);
    assert.deepEqual(tensor.shape, shape, `${label}: shape of ${name}`);
    assert.ok(tensor.data instanceof Float32Array, `${label}: ${name} is float32`);
    assert.ok(tensor.data.byteOffset === 0 && tensor.data.buffer.byteLength === tensor.data.byteLength,
      `${label}: ${name} owns its whole buffer`);
    assert.equal(sha256(tensor.data), digest, `${label}: values of ${name}`);
  }
}

export async function assertRejectsWith(promise, code, pattern, label) {
  await assert.rejects(promise, (error) => {
    assert.equal(error?.name, 'VideoRNNError', `${label}: ${error?.stack ?? error}`);
    assert.equal(error.code, code, `${label}: ${error.message}`);
    if (pattern) assert.match(error.message, pattern, label);
    return true;
  }, label);
}

// ---- builders -------------------------------------------------------------------------------

const encoder = new TextEncoder();

function u32(value) {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0);
  return bytes;
}

export function u64(value) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}

/** A safetensors file from a header object (or raw header text or bytes) and the data bytes. */
export function buildSafetensors(header, data = Buffer.alloc(0), { headerLength } = {}) {
  const json = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  return Buffer.concat([u64(headerLength ?? json.length), json, data]);
}

/** A stored (uncompressed) zip, as torch.save writes it; `overrides` bends the records. */
export function buildZip(entries, overrides = {}) {
  const locals = [];
  const central = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(0x800, 6);
    header.writeUInt32LE(crc32(data), 14);
    header.writeUInt32LE(data.length, 18);
    header.writeUInt32LE(data.length, 22);
    header.writeUInt16LE(nameBytes.length, 26);
    locals.push(header, nameBytes, data);
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(20, 4);
    record.writeUInt16LE(20, 6);
    record.writeUInt16LE(0x800, 8);
    record.writeUInt16LE(overrides.method ?? 0, 10);
    record.writeUInt32LE(crc32(data), 16);
    record.writeUInt32LE(data.length, 20);
    record.writeUInt32LE(data.length, 24);
    record.writeUInt16LE(nameBytes.length, 28);
    record.writeUInt32LE(overrides.localOffset?.(name, offset) ?? offset, 42);
    central.push(record, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(overrides.count ?? entries.length, 8);
  end.writeUInt16LE(overrides.count ?? entries.length, 10);
  end.writeUInt32LE(overrides.directorySize ?? directory.length, 12);
  end.writeUInt32LE(overrides.directoryOffset ?? offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

// Pickle opcodes (protocol 2), enough to write torch state dicts and hostile variants by hand.
export const op = {
  proto: (version = 2) => Buffer.from([0x80, version]),
  global: (module, name) => Buffer.concat([Buffer.from([0x63]), encoder.encode(`${module}\n${name}\n`)]),
  text: (value) => {
    const bytes = encoder.encode(value);
    return Buffer.concat([Buffer.from([0x58]), u32(bytes.length), bytes]);
  },
  int: (value) => Buffer.concat([Buffer.from([0x4a]), u32(value)]),
  long: (value) => {
    // LONG1 with 8 bytes, for values beyond 32 bits.
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64LE(BigInt(value));
    return Buffer.concat([Buffer.from([0x8a, 8]), bytes]);
  },
  mark: Buffer.from([0x28]),
  tuple: Buffer.from([0x74]),
  emptyTuple: Buffer.from([0x29]),
  emptyDict: Buffer.from([0x7d]),
  emptyList: Buffer.from([0x5d]),
  append: Buffer.from([0x61]),
  appends: Buffer.from([0x65]),
  setItems: Buffer.from([0x75]),
  reduce: Buffer.from([0x52]),
  persistentId: Buffer.from([0x51]),
  none: Buffer.from([0x4e]),
  false: Buffer.from([0x89]),
  stop: Buffer.from([0x2e]),
};

function intOp(value) {
  return value >= 2 ** 31 || value < -(2 ** 31) ? op.long(value) : op.int(value);
}

function intTuple(values) {
  return Buffer.concat([op.mark, ...values.map(intOp), op.tuple]);
}

/**
 * The pickle of a dict of tensors. Each tensor: { name, key, numel, offset = 0, shape, stride,
 * storage = 'FloatStorage' }; `legacy` adds the view field of legacy persistent ids.
 */
export function tensorDictPickle(tensors, { legacy = false } = {}) {
  const parts = [op.proto(2), op.emptyDict, op.mark];
  for (const tensor of tensors) {
    const contiguous = tensor.shape.map((_, index) => tensor.shape.slice(index + 1).reduce((a, b) => a * b, 1));
    parts.push(op.text(tensor.name), op.global('torch._utils', '_rebuild_tensor_v2'), op.mark,
      op.mark, op.text('storage'), op.global('torch', tensor.storage ?? 'FloatStorage'), op.text(tensor.key),
      op.text('cpu'), intOp(tensor.numel), ...(legacy ? [op.none] : []), op.tuple, op.persistentId,
      intOp(tensor.offset ?? 0), intTuple(tensor.shape), intTuple(tensor.stride ?? contiguous), op.false,
      op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.tuple, op.reduce);
  }
  parts.push(op.setItems, op.stop);
  return Buffer.concat(parts);
}

/** A zip-format torch file: data.pkl plus one record per storage ({ key: bytes }). */
export function buildTorchZip(pickle, storages, zipOverrides) {
  const entries = [{ name: 'archive/data.pkl', data: pickle }];
  for (const [key, data] of Object.entries(storages)) entries.push({ name: `archive/data/${key}`, data });
  entries.push({ name: 'archive/version', data: Buffer.from('3\n') });
  return buildZip(entries, zipOverrides);
}

// torch/serialization.py's legacy preamble: magic number, protocol 1001, system info.
const LEGACY_MAGIC = Buffer.from('80028a0a6cfc9c46f9206aa850192e', 'hex');
const LEGACY_PROTOCOL = Buffer.from('80024de9032e', 'hex');
const LEGACY_SYSTEM_INFO = Buffer.concat([op.proto(2), op.emptyDict, op.stop]);

/** A legacy torch file; storages: [{ key, bytes, count? }] in file order. */
export function buildTorchLegacy(pickle, storages) {
  const keys = Buffer.concat([op.proto(2), op.emptyList, op.mark, ...storages.map((s) => op.text(s.key)), op.appends, op.stop]);
  const bodies = storages.flatMap((storage) => [u64(storage.count ?? storage.bytes.length / 4), storage.bytes]);
  return Buffer.concat([LEGACY_MAGIC, LEGACY_PROTOCOL, LEGACY_SYSTEM_INFO, pickle, keys, ...bodies]);
}

export function floatBytes(values) {
  return Buffer.from(new Float32Array(values).buffer);
}
