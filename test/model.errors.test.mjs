// Bad input gets a coded VideoRNNError, never a crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, VideoRNNError, backendInfo } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff, tempDir } from './helpers/clips.mjs';

let model;
before(async () => { model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32, seed: 1 }); });
after(() => model.dispose());

const coded = (code) => (error) => error instanceof VideoRNNError && error.code === code;

test('clips that do not match their buffers or are too small are refused with E_INVALID_ARGUMENT', async () => {
  await assert.rejects(model.predict({ data: new Uint8Array(0), frames: 0, height: 32, width: 32 }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(model.predict({ data: new Uint8Array(100), frames: 2, height: 32, width: 32 }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(model.predict(makeClip(2, 16)), (error) => coded('E_INVALID_ARGUMENT')(error) && /at least 32x32/.test(error.message));
  await assert.rejects(model.predict([]), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(model.predict(42), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(model.predict(makeClip(2, 32), { batchSize: 1e9 }), coded('E_INVALID_ARGUMENT'));
});

test('bad options and devices are refused before anything is allocated', async () => {
  await assert.rejects(VideoRNN.create({ classes: ['only'] }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(VideoRNN.create({ classes: ['a', 'a'] }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 0 }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(VideoRNN.create({ classes: ['a', 'b'], frameSize: 100000 }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(VideoRNN.create({ classes: ['a', 'b'], device: 'tpu' }), coded('E_INVALID_ARGUMENT'));
  await assert.rejects(VideoRNN.create({ classes: ['a', 'b'], trainableBackboneLayers: 17 }), coded('E_INVALID_ARGUMENT'));
  if (backendInfo().cuda) {
    await assert.rejects(VideoRNN.create({ classes: ['a', 'b'], device: `cuda:${backendInfo().cudaDevices}` }), coded('E_CUDA_UNAVAILABLE'));
  } else {
    await assert.rejects(VideoRNN.create({ classes: ['a', 'b'], device: 'cuda' }), coded('E_CUDA_UNAVAILABLE'));
  }
});

test('a LibTorch error in a worker rejects with E_NATIVE and its message without the backtrace', async () => {
  const native = await addon().createModel({ classes: 2, hiddenSize: 4 });
  const clip = makeClip(2, 16);
  await assert.rejects(native.predict([{ ...clip }]), (error) =>
    error.code === 'E_NATIVE' && /at least 32 px/.test(error.message) && !/frame #\d/.test(error.message));
  // The same model still works afterwards.
  assert.equal((await native.predict([makeClip(1, 32)])).probabilities.length, 2);
  native.dispose();
});

test("embed names the caller's index in errors and embeds clips of different sizes", async () => {
  const inputs = Array.from({ length: 10 }, (_, index) => makeClip(1, 32, index));
  inputs[9] = makeClip(1, 16, 9);
  await assert.rejects(model.embed(inputs), (error) => coded('E_INVALID_ARGUMENT')(error) && /input\[9\]/.test(error.message));
  const small = makeClip(2, 32, 1);
  const large = makeClip(3, 48, 2);
  const [first, second, third] = await model.embed([small, large, small]);
  assert.deepEqual([first.length, second.length, third.length], [2 * 4096, 3 * 4096, 2 * 4096]);
  const [alone] = await model.embed(large);
  assert.ok(maxAbsDiff(second, alone) < 1e-5, `the 48 px clip: ${maxAbsDiff(second, alone)}`);
  assert.ok(maxAbsDiff(first, third) < 1e-5);
  assert.ok(maxAbsDiff(first, second.subarray(0, 2 * 4096)) > 1e-3, 'different clips give different embeddings');
});

test('a native failure rejects whatever its message, the empty one included', async () => {
  for (const kind of ['c10', 'std']) {
    await assert.rejects(addon().failInWorkerForTesting(kind, 'shape mismatch'),
      (error) => error.code === 'E_NATIVE' && error.message === 'shape mismatch', kind);
    await assert.rejects(addon().failInWorkerForTesting(kind, ''),
      (error) => error.code === 'E_NATIVE' && error.message === 'LibTorch failed without an error message', `${kind}, empty message`);
  }
});

test('dispose() during a running call lets it complete with the right result; later calls get E_DISPOSED', async () => {
  const short = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32, seed: 8 });
  const clips = [makeClip(4, 64, 1), makeClip(3, 64, 2), makeClip(5, 64, 3)];
  const expected = await short.predict(clips, { batchSize: 1 });
  // Three batches: the first is in native code once the event loop turns (in-memory clips need no
  // I/O), the other two start after dispose().
  const running = short.predict(clips, { batchSize: 1 });
  await new Promise((resolve) => setImmediate(resolve));
  short.dispose();
  const predictions = await running;
  assert.equal(predictions.length, 3);
  predictions.forEach((prediction, index) => {
    assert.equal(prediction.label, expected[index].label);
    assert.ok(Math.abs(prediction.probabilities.a - expected[index].probabilities.a) < 1e-6, `clip ${index}`);
  });
  await assert.rejects(short.predict(makeClip(2, 32)), coded('E_DISPOSED'));
  await assert.rejects(short.embed(makeClip(2, 32)), coded('E_DISPOSED'));
  await assert.rejects(short.save('/tmp/never.safetensors'), coded('E_DISPOSED'));
  short.dispose();
});

test('foreign and truncated checkpoints give E_CHECKPOINT, a missing one E_WEIGHTS_NOT_FOUND', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'model.safetensors');
    await model.save(file);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(path.join(dir, 'truncated.safetensors'), bytes.subarray(0, bytes.length - 1000));
    fs.writeFileSync(path.join(dir, 'text.safetensors'), 'not a checkpoint at all');
    await assert.rejects(VideoRNN.load(path.join(dir, 'truncated.safetensors')), coded('E_CHECKPOINT'));
    await assert.rejects(VideoRNN.load(path.join(dir, 'text.safetensors')), coded('E_CHECKPOINT'));
    // A checkpoint that does not exist: E_WEIGHTS_NOT_FOUND (src/errors.ts: "a backbone weights file or
    // model checkpoint that does not exist"), naming the path, never E_CHECKPOINT or a raw ENOENT.
    const absent = path.join(dir, 'absent.safetensors');
    await assert.rejects(VideoRNN.load(absent), (error) => coded('E_WEIGHTS_NOT_FOUND')(error) && error.message.includes(absent));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
