import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadBackboneWeights, readTorchFile, readWeightsFile } from '../dist/weights/index.js';
import {
  assertRejectsWith, assertTensorsEqual, buildSafetensors, buildTorchLegacy, buildZip, buildTorchZip, floatBytes, generate, op,
  removeDirectory, temporaryDirectory, tensorDictPickle,
} from './weights.fixtures.mjs';

let directory;
let manifest;

before(() => {
  directory = temporaryDirectory('pth');
  manifest = generate('small', directory);
});

after(() => removeDirectory(directory));

function write(name, bytes) {
  const path = join(directory, name);
  writeFileSync(path, bytes);
  return path;
}

test('reads every zip and legacy file torch.save wrote, value for value', async () => {
  const files = Object.entries(manifest.files).filter(([name]) => name.endsWith('.pth'));
  for (const kind of ['.zip.pth', '.legacy.pth', '.zip64.pth', 'protocol4', 'protocol5', 'wrapped', 'parameter']) {
    assert.ok(files.some(([name]) => name.includes(kind)), `fixtures include ${kind}`);
  }
  for (const [name, set] of files) {
    assertTensorsEqual(await readTorchFile(join(directory, name)), manifest.expected[set], name);
  }
});

test('keeps the state dict order', async () => {
  for (const name of ['module.zip.pth', 'module.legacy.pth', 'ordered.legacy.pth']) {
    const tensors = await readTorchFile(join(directory, name));
    assert.deepEqual([...tensors.keys()], Object.keys(manifest.expected[manifest.files[name]]), name);
  }
});

test('views of one storage come back as independent copies', async () => {
  for (const name of ['strided.zip.pth', 'strided.legacy.pth']) {
    const tensors = await readTorchFile(join(directory, name));
    const whole = tensors.get('shared.whole').data;
    const first = tensors.get('shared.first').data;
    // shared.first is base[2:8]: the same numbers, but not the same memory.
    assert.deepEqual([...first], [...whole.subarray(2, 8)], name);
    first[0] += 1;
    assert.notEqual(first[0], whole[2], name);
  }
});

test('readWeightsFile tells the formats apart by content', async () => {
  const cases = { 'ordered.zip.pth': 'torch-zip', 'ordered.legacy.pth': 'torch-legacy', 'dtypes.safetensors': 'safetensors' };
  for (const [name, format] of Object.entries(cases)) {
    // A misleading extension must not matter.
    const path = write(`${name}.bin`, readFileSync(join(directory, name)));
    const result = await readWeightsFile(path);
    assert.equal(result.format, format, name);
    assertTensorsEqual(result.tensors, manifest.expected[manifest.files[name]], name);
  }
  // A 640-byte safetensors header starts with the bytes 0x80 0x02, like a pickle.
  const header = Buffer.alloc(640, 0x20);
  header.write(JSON.stringify({ only: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
  const lookalike = buildSafetensors(header, floatBytes([7]));
  assert.deepEqual([...lookalike.subarray(0, 2)], [0x80, 0x02]);
  const result = await readWeightsFile(write('lookalike.safetensors', lookalike));
  assert.equal(result.format, 'safetensors');
  assert.deepEqual([...result.tensors.get('only').data], [7]);
});

test('refuses hostile pickles, naming the global, and runs nothing', async () => {
  const hostile = join(directory, 'hostile');
  mkdirSync(hostile);
  const marker = join(hostile, 'executed');
  const hostileManifest = generate('malicious', hostile, marker);
  // Python's own unpickler does run these payloads (it created its marker each time).
  assert.ok(Object.values(hostileManifest.proof).length >= 4);
  for (const [name, ran] of Object.entries(hostileManifest.proof)) assert.equal(ran, true, `payload of ${name} is live`);
  const files = Object.entries(hostileManifest.files);
  assert.ok(files.length >= 10);
  for (const [name, global] of files) {
    const escaped = global.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const path = join(hostile, name);
    await assertRejectsWith(readTorchFile(path), 'E_WEIGHTS_FORMAT', new RegExp(`${escaped}.*not on the allow-list`), name);
    await assertRejectsWith(loadBackboneWeights(path), 'E_WEIGHTS_FORMAT', new RegExp(escaped), name);
  }
  assert.equal(existsSync(marker), false, 'no payload ran');
});

test('refuses a whole pickled model, naming its class', async () => {
  for (const [name, global] of Object.entries(manifest.refused)) {
    await assertRejectsWith(readTorchFile(join(directory, name)), 'E_WEIGHTS_FORMAT', new RegExp(global.replaceAll('.', '\\.')), name);
  }
});

test('every truncation of a torch file is refused', async () => {
  for (const name of ['ordered.zip.pth', 'ordered.legacy.pth', 'dtypes.legacy.pth', 'ordered.zip64.pth']) {
    const bytes = readFileSync(join(directory, name));
    const cuts = new Set([0, 1, 4, 20, bytes.length - 1, bytes.length - 22, bytes.length - 100]);
    for (let cut = 0; cut < bytes.length; cut += Math.ceil(bytes.length / 25)) cuts.add(cut);
    for (const cut of cuts) {
      const path = write('truncated.pth', bytes.subarray(0, cut));
      await assertRejectsWith(readTorchFile(path), 'E_WEIGHTS_FORMAT', undefined, `${name} cut at ${cut}`);
    }
  }
});

test('refuses files that are not torch files', async () => {
  const cases = {
    'empty.pth': Buffer.alloc(0),
    'text.pth': Buffer.from('hello, these are not weights\n'),
    'pickle-of-a-list.pth': Buffer.concat([op.proto(2), op.emptyList, op.stop]),
    'zip-without-pickle.pth': buildZip([{ name: 'archive/version', data: Buffer.from('3\n') }]),
    'zip-with-empty-pickle.pth': buildTorchZip(Buffer.alloc(0), {}),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    await assertRejectsWith(readTorchFile(write(name, bytes)), 'E_WEIGHTS_FORMAT', undefined, name);
  }
  await assertRejectsWith(readTorchFile(join(directory, 'no-such-file.pth')), 'E_WEIGHTS_NOT_FOUND', /not found/, 'missing file');
  await assertRejectsWith(readTorchFile(directory), 'E_WEIGHTS_FORMAT', undefined, 'a directory');
});

// Hand-made files: one 4x4 float storage and views of it that the tests bend.
const storage = floatBytes(Array.from({ length: 16 }, (_, index) => index));
const view = (overrides) => ({ name: 'weight', key: '0', numel: 16, shape: [4, 4], ...overrides });

function bothFormats(tensors, storages = { 0: storage }) {
  return {
    zip: buildTorchZip(tensorDictPickle(tensors), storages),
    legacy: buildTorchLegacy(tensorDictPickle(tensors, { legacy: true }),
      Object.entries(storages).map(([key, bytes]) => ({ key, bytes }))),
  };
}

test('hand-made files: a valid view reads, strides and offsets are honoured', async () => {
  const files = bothFormats([view({ name: 'column', shape: [4], stride: [4], offset: 1 })]);
  for (const [format, bytes] of Object.entries(files)) {
    const tensors = await readTorchFile(write(`column.${format}`, bytes));
    assert.deepEqual([...tensors.get('column').data], [1, 5, 9, 13], format);
  }
});

test('hand-made files: views outside their storage and inconsistent sizes are refused', async () => {
  const cases = {
    'offset past the end': [view({ shape: [4], stride: [1], offset: 13 }), /reaches past its storage/],
    'stride past the end': [view({ shape: [4, 4], stride: [5, 1] }), /reaches past its storage/],
    'numel larger than the record': [view({ numel: 17 }), /holds 64 bytes|holds 16 elements|more than the file holds/],
    'huge numel': [view({ numel: 2 ** 50 }), /more than the file holds/],
    'broadcast to a huge shape': [view({ shape: [2 ** 20, 2 ** 20], stride: [0, 0] }), /bytes of tensors/],
    'wrong storage dtype': [view({ storage: 'DoubleStorage' }), /holds 64 bytes|past the end of the file/],
    'unknown storage type': [view({ storage: 'ComplexFloatStorage' }), /ComplexFloatStorage/],
  };
  for (const [label, [tensor, pattern]] of Object.entries(cases)) {
    for (const [format, bytes] of Object.entries(bothFormats([tensor]))) {
      await assertRejectsWith(readTorchFile(write(`bad.${format}`, bytes)), 'E_WEIGHTS_FORMAT', pattern, `${label} (${format})`);
    }
  }
});

test('hand-made files: many views of one storage cannot multiply memory', async () => {
  const big = floatBytes(new Array(4096).fill(1));
  const tensors = Array.from({ length: 200 }, (_, index) => view({ name: `copy${index}`, numel: 4096, shape: [4096] }));
  for (const [format, bytes] of Object.entries(bothFormats(tensors, { 0: big }))) {
    await assertRejectsWith(readTorchFile(write(`amplified.${format}`, bytes)), 'E_WEIGHTS_FORMAT', /bytes of tensors/, format);
  }
});

test('hand-made files: pickle limits (nesting, lengths, memo) end in E_WEIGHTS_FORMAT', async () => {
  const deepMarks = Buffer.concat([op.proto(2), Buffer.alloc(100_000, 0x28), op.stop]);
  const deepLists = Buffer.concat([op.proto(2), Buffer.alloc(200_000, 0x5d), Buffer.alloc(199_999, 0x61), op.stop]);
  const hugeText = Buffer.concat([op.proto(2), Buffer.from([0x8d]), Buffer.from('ffffffffffffff7f', 'hex'), op.stop]);
  const missingMemo = Buffer.concat([op.proto(2), Buffer.from([0x6a, 0xff, 0xff, 0xff, 0xff]), op.stop]);
  const cases = [[deepMarks, /nesting deeper/], [deepLists, /not a dict of tensors/], [hugeText, /absurd|bytes left/],
    [missingMemo, /never stored/]];
  for (const [pickle, pattern] of cases) {
    const zip = buildTorchZip(pickle, {});
    await assertRejectsWith(readTorchFile(write('limits.zip', zip)), 'E_WEIGHTS_FORMAT', pattern, String(pattern));
    const legacy = buildTorchLegacy(pickle, []);
    await assertRejectsWith(readTorchFile(write('limits.legacy', legacy)), 'E_WEIGHTS_FORMAT', undefined, String(pattern));
  }
});

test('hand-made files: zip records pointing outside the file are refused', async () => {
  const pickle = tensorDictPickle([view({})]);
  const cases = {
    'directory past the end': { directoryOffset: 1 << 30 },
    'entry past the end': { localOffset: (name, offset) => (name.endsWith('/0') ? 1 << 30 : offset) },
    'more entries than records': { count: 60000 },
    'compressed entry': { method: 8 },
  };
  for (const [label, overrides] of Object.entries(cases)) {
    const bytes = buildTorchZip(pickle, { 0: storage }, overrides);
    await assertRejectsWith(readTorchFile(write('zip.pth', bytes)), 'E_WEIGHTS_FORMAT', undefined, label);
  }
});

test('hand-made files: legacy storage counts must match the pickle', async () => {
  const pickle = tensorDictPickle([view({})], { legacy: true });
  for (const count of [15, 17, 2 ** 40]) {
    const bytes = buildTorchLegacy(pickle, [{ key: '0', bytes: storage, count }]);
    await assertRejectsWith(readTorchFile(write('count.pth', bytes)), 'E_WEIGHTS_FORMAT', /holds \d+ elements/, `count ${count}`);
  }
});

test('hand-made files: a zip marked big-endian is byte-swapped, an unknown byte order refused', async () => {
  const values = [1.5, -2, 3.25, 1e-3];
  const bigEndian = Buffer.alloc(16);
  values.forEach((value, index) => bigEndian.writeFloatBE(value, index * 4));
  const pickle = tensorDictPickle([{ name: 'weight', key: '0', numel: 4, shape: [2, 2] }]);
  const archive = (order) => buildZip([{ name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: Buffer.from(order) }, { name: 'archive/data/0', data: bigEndian }]);
  const tensors = await readTorchFile(write('big.pth', archive('big')));
  assert.deepEqual([...tensors.get('weight').data], values.map(Math.fround));
  await assertRejectsWith(readTorchFile(write('middle.pth', archive('middle'))), 'E_WEIGHTS_FORMAT', /byte order/, 'middle-endian');
});
