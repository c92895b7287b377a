// Checkpoints are read by the native side from the file the TypeScript side opened and checked:
// the tensor bytes never pass through JavaScript buffers (a VGG16 checkpoint is about 530 MB, which
// otherwise stays in the JavaScript heap's external memory until a major collection).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff, tempDir } from './helpers/clips.mjs';

const classes = ['left', 'right'];
const clips = [makeClip(3, 32, 31), makeClip(2, 32, 32)];

// A model with a random backbone (built from no weights file) is saved whole, as version 1 files always were.
test('VideoRNN.load reads a checkpoint without JavaScript buffers and gives the saved model back exactly; a version-1 file loads too', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'model.safetensors');
  const saved = await VideoRNN.create({ classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 5 });
  let loaded;
  try {
    await saved.save(file);
    const size = fs.statSync(file).size;
    assert.ok(size > 500e6, `a full VGG16 checkpoint (${size} bytes)`);
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().arrayBuffers); }, 1);
    try {
      loaded = await VideoRNN.load(file);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    assert.ok(peak - baseline < 64e6, `JavaScript buffers grew by ${((peak - baseline) / 1e6).toFixed(0)} MB while loading`);
    const [before, after] = [await saved.embed(clips), await loaded.embed(clips)];
    before.forEach((rows, index) => assert.equal(maxAbsDiff(rows, after[index]), 0, `clip ${index}`));
    assert.deepEqual(await saved.predict(clips[0]), await loaded.predict(clips[0]));
    assert.deepEqual(loaded.backbone, { identity: null, naming: null, hint: null, trainedTensors: [],
      checkpoint: { path: file, version: 2, selfContained: true } });

    // Version 1 is this file with "1" for "2": the same tensors, format and config, no backbone metadata.
    const head = Buffer.alloc(8);
    const handle = fs.openSync(file, 'r+');
    try {
      fs.readSync(handle, head, 0, 8, 0);
      const header = Buffer.alloc(Number(head.readBigUInt64LE()));
      fs.readSync(handle, header, 0, header.length, 8);
      const text = header.toString('utf8');
      assert.ok(!text.includes('"backbone"') && text.split('"version":"2"').length === 2, 'one version field, no backbone reference');
      fs.writeSync(handle, Buffer.from('"version":"1"'), 0, 13, 8 + header.indexOf('"version":"2"'));
    } finally {
      fs.closeSync(handle);
    }
    loaded.dispose();
    loaded = await VideoRNN.load(file);
    assert.equal(loaded.backbone.checkpoint.version, 1);
    const [first, second] = [await saved.embed(clips), await loaded.embed(clips)];
    first.forEach((rows, index) => assert.equal(maxAbsDiff(rows, second[index]), 0, `version 1, clip ${index}`));
    assert.deepEqual(await saved.predict(clips[0]), await loaded.predict(clips[0]));
  } finally {
    saved.dispose();
    loaded?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the native reader refuses a range past the end of the file or one whose size does not match its shape, and the model keeps its weights', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'short.bin');
  fs.writeFileSync(file, Buffer.alloc(16));
  const model = await addon().createModel({ classes: 2, hiddenSize: 8, seed: 6 });
  const fd = fs.openSync(file, 'r');
  try {
    const before = await model.embed(clips);
    const range = { name: 'classifier.2.bias', shape: [2], dtype: 'F32' };
    await assert.rejects(model.loadStateFile(fd, file, [{ ...range, offset: 12, bytes: 8 }], '', false),
      (error) => error.code === 'E_NATIVE' && error.message.includes(file) && /tensor classifier\.2\.bias/.test(error.message) && /ended early/.test(error.message));
    await assert.rejects(model.loadStateFile(fd, file, [{ ...range, offset: 0, bytes: 12 }], '', false),
      (error) => error.code === 'E_NATIVE' && /classifier\.2\.bias with 12 bytes .* needs 8/.test(error.message));
    await assert.rejects(async () => model.loadStateFile(fd, file, [{ ...range, dtype: 'U16', offset: 0, bytes: 4 }], '', false),
      (error) => error.code === 'E_INVALID_ARGUMENT' && /U16/.test(error.message));
    const after = await model.embed(clips);
    before.forEach((rows, index) => assert.equal(maxAbsDiff(rows, after[index]), 0, `clip ${index}`));
    // And it does read: 8 zero bytes at offset 8 become the head's last bias.
    await model.loadStateFile(fd, file, [{ ...range, offset: 8, bytes: 8 }], '', false);
    const state = await model.getState();
    assert.deepEqual([...state.find((tensor) => tensor.name === 'classifier.2.bias').data], [0, 0]);
    // What a small save asks for: every tensor but those named.
    const skipped = state.filter((tensor) => tensor.name.startsWith('embedding.')).map((tensor) => tensor.name);
    const kept = await model.getState(skipped);
    assert.deepEqual(kept.map((tensor) => tensor.name), state.map((tensor) => tensor.name).filter((name) => !name.startsWith('embedding.')));
    assert.throws(() => model.getState('embedding.'), (error) => error.code === 'E_INVALID_ARGUMENT');
  } finally {
    fs.closeSync(fd);
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
