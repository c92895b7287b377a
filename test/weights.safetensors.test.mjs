import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readSafetensors, writeSafetensors } from '../dist/weights/index.js';
import {
  assertRejectsWith, assertTensorsEqual, buildSafetensors, generate, removeDirectory, sha256, temporaryDirectory, u64,
} from './weights.fixtures.mjs';

let directory;
let manifest;

before(() => {
  directory = temporaryDirectory('safetensors');
  manifest = generate('small', directory);
});

after(() => removeDirectory(directory));

function write(name, bytes) {
  const path = join(directory, name);
  writeFileSync(path, bytes);
  return path;
}

function randomTensor(shape, seed) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let state = seed;
  for (let index = 0; index < data.length; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[index] = state / 2 ** 32 - 0.5;
  }
  return { shape, data };
}

test('reads files written by a Python writer of the format, every dtype, with metadata', async () => {
  const files = Object.entries(manifest.files).filter(([name]) => name.endsWith('.safetensors'));
  assert.ok(files.length >= 4);
  for (const [name, set] of files) {
    const { tensors, metadata } = await readSafetensors(join(directory, name));
    assertTensorsEqual(tensors, manifest.expected[set], name);
    if (name !== 'plain.safetensors') assert.deepEqual(metadata, { format: 'pt', note: 'ünïcode ✓' }, name);
    else assert.deepEqual(metadata, {}, name);
  }
});

test('round trip: what writeSafetensors writes reads back bit for bit, and Python reads it too', async () => {
  const tensors = new Map([
    ['layer.weight', randomTensor([8, 3, 3, 3], 1)],
    ['0', randomTensor([5], 2)],
    ['__proto__', randomTensor([2, 2], 3)],
    ['scalar', { shape: [], data: new Float32Array([Math.PI]) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ['specials', { shape: [4], data: new Float32Array([NaN, Infinity, -0, 1e-45]) }],
  ]);
  const metadata = { format: 'video-rnn', version: '1', config: JSON.stringify({ classes: ['a', 'b'] }), '__proto__': 'kept' };
  const path = join(directory, 'round-trip.safetensors');
  await writeSafetensors(path, tensors, metadata);

  const read = await readSafetensors(path);
  assert.deepEqual([...read.tensors.keys()].sort(), [...tensors.keys()].sort());
  for (const [name, tensor] of tensors) {
    assert.deepEqual(read.tensors.get(name).shape, tensor.shape, name);
    assert.equal(sha256(read.tensors.get(name).data), sha256(tensor.data), name);
  }
  assert.deepEqual(Object.keys(read.metadata).sort(), Object.keys(metadata).sort());
  for (const key of Object.keys(metadata)) assert.equal(read.metadata[key], metadata[key], key);
  assert.equal(Object.getPrototypeOf(read.metadata), Object.prototype, 'a "__proto__" key stays data');

  const python = join(directory, 'python-read');
  mkdirSync(python);
  const seen = generate('read-safetensors', python, path);
  assert.equal(seen.header_length % 8, 0, 'data starts 8-byte aligned');
  assert.deepEqual(seen.key_order, [...tensors.keys()].sort(), 'header keys sorted');
  assert.deepEqual(seen.metadata, metadata);
  for (const [name, tensor] of tensors) {
    assert.equal(seen.expected[name].sha256, sha256(tensor.data), `Python reads ${name}`);
    assert.deepEqual(seen.expected[name].shape, tensor.shape, name);
  }
});

function validFile() {
  const data = Buffer.from(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  const header = {
    a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [2], data_offsets: [16, 24] },
  };
  return { header, data };
}

test('validates the header: lengths, offsets, overlaps, holes, dtypes and shapes', async () => {
  const { header, data } = validFile();
  const withEntry = (name, entry) => ({ ...header, [name]: { ...header[name], ...entry } });
  const cases = {
    'huge header length': [buildSafetensors(header, data, { headerLength: 2n ** 63n }), /header/],
    'header length past the end': [buildSafetensors(header, data, { headerLength: 1000 }), /header/],
    'header length above 100 MB': [buildSafetensors(header, data, { headerLength: 200_000_000 }), /header/],
    'offsets past the end': [buildSafetensors(withEntry('b', { data_offsets: [16, 32] }), data), /outside/],
    'overlapping ranges': [buildSafetensors(withEntry('b', { data_offsets: [8, 16], shape: [2] }), data), /overlaps/],
    'a hole': [buildSafetensors(withEntry('b', { data_offsets: [20, 24], shape: [1] }), data), /unused bytes/],
    'trailing bytes': [buildSafetensors(header, Buffer.concat([data, Buffer.alloc(4)])), /after its last tensor/],
    'shape and range disagree': [buildSafetensors(withEntry('a', { shape: [3, 2] }), data), /needs 24 bytes/],
    'dtype and range disagree': [buildSafetensors(withEntry('a', { dtype: 'F64' }), data), /needs 32 bytes/],
    'huge shape': [buildSafetensors(withEntry('a', { shape: [2 ** 40, 2 ** 40, 2 ** 40] }), data), /more than the file holds/],
    'negative dimension': [buildSafetensors(withEntry('a', { shape: [-2, -2] }), data), /shape/],
    'fractional dimension': [buildSafetensors(withEntry('a', { shape: [2.5, 2] }), data), /shape/],
    'unknown dtype': [buildSafetensors(withEntry('a', { dtype: 'C64' }), data), /dtype/],
    'inherited dtype name': [buildSafetensors(withEntry('a', { dtype: 'constructor' }), data), /dtype/],
    'offsets reversed': [buildSafetensors(withEntry('a', { data_offsets: [16, 0] }), data), /outside/],
    'metadata not strings': [buildSafetensors({ ...header, __metadata__: { epoch: 3 } }, data), /__metadata__/],
    'header not JSON': [buildSafetensors('{"a": ', data), /not UTF-8 JSON/],
    'header an array': [buildSafetensors('[1, 2]', data), /not a JSON object/],
    'header not UTF-8': [buildSafetensors(Buffer.from('{"a\xff": 1}', 'latin1'), data), /not UTF-8/],
    'too short': [Buffer.from([1, 2, 3]), /too short/],
  };
  // The valid base must read, or the cases above prove nothing.
  assert.equal((await readSafetensors(write('valid.safetensors', buildSafetensors(header, data)))).tensors.size, 2);
  for (const [label, [bytes, pattern]] of Object.entries(cases)) {
    await assertRejectsWith(readSafetensors(write('bad.safetensors', bytes)), 'E_WEIGHTS_FORMAT', pattern, label);
  }
});

test('every truncation of a safetensors file is refused', async () => {
  const bytes = readFileSync(join(directory, 'dtypes.safetensors'));
  for (let cut = 0; cut < bytes.length; cut += 7) {
    await assertRejectsWith(readSafetensors(write('cut.safetensors', bytes.subarray(0, cut))), 'E_WEIGHTS_FORMAT', undefined, `cut at ${cut}`);
  }
});

test('writeSafetensors refuses bad arguments before touching the disk', async () => {
  const path = join(directory, 'never.safetensors');
  const cases = [
    [new Map([['a', { shape: [3], data: new Float32Array(2) }]]), {}],
    [new Map([['a', { shape: [2], data: [1, 2] }]]), {}],
    [new Map([['a', { shape: [-1], data: new Float32Array(0) }]]), {}],
    [new Map([['__metadata__', { shape: [1], data: new Float32Array(1) }]]), {}],
    [new Map([['', { shape: [1], data: new Float32Array(1) }]]), {}],
    [new Map(), { version: 1 }],
    [{ a: { shape: [1], data: new Float32Array(1) } }, {}],
  ];
  for (const [index, [tensors, metadata]] of cases.entries()) {
    await assertRejectsWith(writeSafetensors(path, tensors, metadata), 'E_INVALID_ARGUMENT', undefined, `case ${index}`);
  }
  assert.equal(existsSync(path), false);
});

function temporaryFiles(folder) {
  return readdirSync(folder).filter((name) => name.endsWith('.tmp'));
}

test('a failed write leaves no temporary file and the old file untouched', async () => {
  const folder = join(directory, 'failing');
  mkdirSync(folder);
  // Renaming a file over a non-empty directory fails after all the data was written.
  const target = join(folder, 'model.safetensors');
  mkdirSync(target);
  writeFileSync(join(target, 'keep'), 'x');
  await assertRejectsWith(writeSafetensors(target, new Map([['a', randomTensor([1000], 4)]])), 'E_CHECKPOINT', /cannot write/, 'rename');
  assert.deepEqual(temporaryFiles(folder), []);
  await assertRejectsWith(writeSafetensors(join(folder, 'missing', 'x.safetensors'), new Map()), 'E_CHECKPOINT', /ENOENT/, 'no folder');
});

test('a write killed half-way leaves the old file readable', { timeout: 60_000 }, async () => {
  const folder = join(directory, 'killed');
  mkdirSync(folder);
  const target = join(folder, 'model.safetensors');
  const old = new Map([['weight', randomTensor([64, 64], 5)]]);
  await writeSafetensors(target, old, { version: 'old' });
  const oldBytes = readFileSync(target);

  // The child writes 16 tensors of 4 MB and pauses 100 ms before each, so that the kill surely
  // lands while the temporary file is being written.
  const module = new URL('../dist/weights/index.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { writeSafetensors } = await import(${JSON.stringify(module)});
    const pause = new Int32Array(new SharedArrayBuffer(4));
    let calls = 0;
    class SlowMap extends Map {
      get(name) { if (++calls > this.size) Atomics.wait(pause, 0, 0, 100); return super.get(name); }
    }
    const tensors = new SlowMap();
    for (let index = 0; index < 16; index++) tensors.set('t' + index, { shape: [1 << 20], data: new Float32Array(1 << 20).fill(index) });
    await writeSafetensors(${JSON.stringify(target)}, tensors, { version: 'new' });
    process.stdout.write('finished');
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  let partial;
  const deadline = Date.now() + 30_000;
  while (!partial && Date.now() < deadline) {
    const [name] = temporaryFiles(folder);
    if (name && statSync(join(folder, name)).size > 4 << 20) partial = join(folder, name);
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill('SIGKILL');
  const { signal } = await exited;
  assert.ok(partial, 'the temporary file was seen growing');
  assert.equal(signal, 'SIGKILL');
  assert.equal(output, '', 'the child did not finish');

  assert.deepEqual(readFileSync(target), oldBytes, 'the target is byte for byte the old file');
  const { tensors, metadata } = await readSafetensors(target);
  assert.equal(metadata.version, 'old');
  assert.equal(sha256(tensors.get('weight').data), sha256(old.get('weight').data));
  // The torn temporary file is what a reader must never see: it does not parse.
  await assertRejectsWith(readSafetensors(partial), 'E_WEIGHTS_FORMAT', undefined, 'the torn temporary file');

  // A later save replaces the file as usual.
  await writeSafetensors(target, new Map([['weight', randomTensor([2], 6)]]), { version: 'newer' });
  assert.equal((await readSafetensors(target)).metadata.version, 'newer');
});
