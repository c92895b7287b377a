// A service can run this for days: memory stays flat, dispose gives the weights back, damaged
// checkpoints are refused with a code, and the addon works inside worker threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { VideoRNN, VideoRNNError } from '../dist/index.js';
import { makeClip, tempDir } from './helpers/clips.mjs';

const rssMB = () => process.memoryUsage().rss / 1048576;

test('RSS after 1,000 predicts is within 5% of RSS after 100', async () => {
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32, seed: 1 });
  try {
    // Two clips of different lengths, so every call packs, sorts and unsorts; few frames, so that the
    // 1,000 calls cost their per-call work (where a leak would be) rather than VGG16's.
    const clips = [makeClip(1, 32, 1), makeClip(2, 32, 2)];
    for (let i = 0; i < 100; i += 1) await model.predict(clips, { batchSize: 2 });
    const after100 = rssMB();
    for (let i = 0; i < 900; i += 1) await model.predict(clips, { batchSize: 2 });
    const after1000 = rssMB();
    assert.ok(after1000 < after100 * 1.05, `RSS ${after100.toFixed(0)} MB after 100, ${after1000.toFixed(0)} MB after 1,000`);
  } finally {
    model.dispose();
  }
});

test('dispose gives the weights back to the system', async () => {
  const before = rssMB();
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32 });
  await model.predict(makeClip(1, 32));
  const loaded = rssMB();
  model.dispose();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const after = rssMB();
  // VGG16 without fc8 is 134 M float32 parameters, about 512 MB.
  assert.ok(loaded - before > 400, `the model added ${(loaded - before).toFixed(0)} MB`);
  assert.ok(loaded - after > 400, `dispose returned ${(loaded - after).toFixed(0)} MB`);
});

test('a model collected without dispose() gives back the external memory it reported to V8', () => {
  const script = `
    const { addon } = require('./dist/native.js');
    (async () => {
      const external = () => addon().externalMemoryForTesting();
      let collected = false;
      const registry = new FinalizationRegistry(() => { collected = true; });
      const before = external();
      let model = await addon().createModel({ classes: 2, hiddenSize: 4 });
      registry.register(model, 'model');
      const created = external();
      model = null;
      for (let round = 0; round < 20 && !collected; round += 1) {
        global.gc();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      process.stdout.write(JSON.stringify({ collected, created: created - before, after: external() - before }));
    })().catch((error) => { console.error(error); process.exit(1); });`;
  const result = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' }));
  assert.ok(result.collected, 'the model handle was never collected');
  // VGG16 without fc8 is about 512 MiB of float32 weights.
  assert.ok(result.created > 400 * 1048576, `creating the model reported ${result.created} bytes`);
  assert.ok(result.after < 16 * 1048576, `${result.after} bytes are still reported after the handle was collected`);
});

test('mutated and truncated checkpoints load or give E_CHECKPOINT, never anything else', async () => {
  const dir = tempDir();
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 4, frameSize: 32, seed: 2 });
  try {
    const good = path.join(dir, 'good.safetensors');
    await model.save(good);
    const bytes = fs.readFileSync(good);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    let state = 12345;
    const random = (limit) => { state = (Math.imul(state, 1103515245) + 12345) >>> 0; return state % limit; };
    const outcomes = { loaded: 0, E_CHECKPOINT: 0 };
    for (let round = 0; round < 60; round += 1) {
      const copy = Buffer.from(bytes.subarray(0, round % 3 === 0 ? random(bytes.length) : bytes.length));
      // Flip bytes of the length prefix and the JSON header, where structure lives.
      for (let flips = 1 + random(4); flips > 0 && copy.length > 8; flips -= 1) {
        copy[random(Math.min(copy.length, 8 + headerLength))] = random(256);
      }
      const file = path.join(dir, `case${round}.safetensors`);
      fs.writeFileSync(file, copy);
      try {
        (await VideoRNN.load(file)).dispose();
        outcomes.loaded += 1;
      } catch (error) {
        assert.ok(error instanceof VideoRNNError && error.code === 'E_CHECKPOINT', `case ${round}: ${error.code} ${error.message}`);
        outcomes.E_CHECKPOINT += 1;
      }
      fs.rmSync(file);
    }
    assert.ok(outcomes.E_CHECKPOINT > 30, JSON.stringify(outcomes));
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the addon loads and predicts inside a worker thread', async () => {
  const source = `
    const { parentPort } = require('node:worker_threads');
    const { VideoRNN } = require(${JSON.stringify(path.resolve('dist/index.js'))});
    (async () => {
      const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 4, frameSize: 32 });
      const clip = { data: new Uint8Array(2 * 32 * 32 * 3).fill(7), frames: 2, height: 32, width: 32 };
      const [prediction] = await model.predict(clip);
      model.dispose();
      parentPort.postMessage(prediction.probabilities.a + prediction.probabilities.b);
    })().catch((error) => parentPort.postMessage(String(error)));`;
  const worker = new Worker(source, { eval: true });
  const total = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  await worker.terminate();
  assert.equal(typeof total, 'number', String(total));
  assert.ok(Math.abs(total - 1) < 1e-5);
});
