// Bad input gets a coded VideoRNNError, never a crash.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, VideoRNNError, backendInfo } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, tempDir } from './helpers/clips.mjs';

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

test('calls after dispose reject with E_DISPOSED; a call running during dispose completes safely', async () => {
  const short = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32 });
  const running = short.predict(makeClip(4, 64));
  short.dispose();
  const settled = await running.then(() => 'resolved', (error) => error.code);
  assert.ok(settled === 'resolved' || settled === 'E_DISPOSED', String(settled));
  await assert.rejects(short.predict(makeClip(2, 32)), coded('E_DISPOSED'));
  await assert.rejects(short.save('/tmp/never.safetensors'), coded('E_DISPOSED'));
  short.dispose();
});

test('foreign and truncated checkpoints give E_CHECKPOINT', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'model.safetensors');
    await model.save(file);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(path.join(dir, 'truncated.safetensors'), bytes.subarray(0, bytes.length - 1000));
    fs.writeFileSync(path.join(dir, 'text.safetensors'), 'not a checkpoint at all');
    await assert.rejects(VideoRNN.load(path.join(dir, 'truncated.safetensors')), coded('E_CHECKPOINT'));
    await assert.rejects(VideoRNN.load(path.join(dir, 'text.safetensors')), coded('E_CHECKPOINT'));
    await assert.rejects(VideoRNN.load(path.join(dir, 'absent.safetensors')), (error) => error instanceof VideoRNNError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
