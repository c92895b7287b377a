// One optimiser step at a time: what trains, what stays frozen, abort, non-finite losses and the
// embedding cache, on in-memory clips (no video files needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, readSafetensors, writeSafetensors } from '../dist/index.js';
import { makeClip, memoryDataset, tempDir } from './helpers/clips.mjs';

const classes = ['left', 'right'];
const dataset = memoryDataset(classes, [3, 5, 4, 6].map((length, index) => ({ clip: makeClip(length, 32, 10 + index), label: index % 2 })));
const small = { classes, hiddenSize: 8, headSize: 8, frameSize: 32 };

async function snapshot(model, dir, name) {
  const file = path.join(dir, `${name}.safetensors`);
  await model.save(file);
  return (await readSafetensors(file)).tensors;
}

function changed(before, after) {
  const names = [];
  for (const [name, tensor] of before) {
    const other = after.get(name).data;
    if (tensor.data.some((value, index) => !Object.is(value, other[index]))) names.push(name);
  }
  return names;
}

test('with trainableBackboneLayers 0, a step changes the LSTM and head but no VGG16 parameter', async () => {
  const dir = tempDir();
  const model = await VideoRNN.create({ ...small, seed: 1 });
  try {
    const before = await snapshot(model, dir, 'before');
    await model.train(dataset, { epochs: 1, batchSize: 4, learningRate: 0.01 });
    const moved = changed(before, await snapshot(model, dir, 'after'));
    assert.deepEqual(moved.filter((name) => name.startsWith('embedding.')), []);
    assert.ok(moved.includes('lstm.weight_ih_l0') && moved.includes('lstm.weight_hh_l0_reverse'));
    assert.ok(moved.includes('classifier.0.weight') && moved.includes('classifier.2.bias'));
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fineTune with 2 layers changes only fc7 and fc6 of VGG16, plus the LSTM and head', async () => {
  const dir = tempDir();
  const model = await VideoRNN.create({ ...small, seed: 2 });
  try {
    const before = await snapshot(model, dir, 'before');
    await model.fineTune(dataset, { trainableBackboneLayers: 2, epochs: 1, batchSize: 4, learningRate: 0.01 });
    const moved = changed(before, await snapshot(model, dir, 'after'));
    assert.deepEqual(moved.filter((name) => name.startsWith('embedding.')).sort(),
      ['embedding.classifier.0.bias', 'embedding.classifier.0.weight', 'embedding.classifier.3.bias', 'embedding.classifier.3.weight']);
    assert.ok(moved.includes('lstm.weight_ih_l0') && moved.includes('classifier.2.weight'));
    // The unfreezing lasts for the fine-tune only.
    const again = await snapshot(model, dir, 'again');
    await model.train(dataset, { epochs: 1, batchSize: 4 });
    assert.deepEqual(changed(again, await snapshot(model, dir, 'final')).filter((name) => name.startsWith('embedding.')), []);
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cached and uncached training give the same losses, and epoch 2 embeds no frames when cached', async () => {
  const frameCount = [3, 5, 4, 6].reduce((a, b) => a + b, 0);
  const run = async (cacheEmbeddings) => {
    const model = await VideoRNN.create({ ...small, seed: 3 });
    const perEpoch = [];
    let mark = model.stats.framesEmbedded;
    const report = await model.train(dataset, { epochs: 3, batchSize: 2, seed: 4, cacheEmbeddings,
      onProgress: (event) => {
        if (event.batch === event.batches) {
          perEpoch.push(model.stats.framesEmbedded - mark);
          mark = model.stats.framesEmbedded;
        }
      } });
    const hits = model.stats.embeddingCacheHits;
    model.dispose();
    return { losses: report.epochs.map((epoch) => epoch.loss), perEpoch, hits };
  };
  const cached = await run(true);
  const uncached = await run(false);
  cached.losses.forEach((loss, index) => assert.ok(Math.abs(loss - uncached.losses[index]) < 1e-5, `epoch ${index + 1}: ${loss} vs ${uncached.losses[index]}`));
  assert.deepEqual(uncached.perEpoch, [frameCount, frameCount, frameCount]);
  assert.deepEqual(cached.perEpoch, [frameCount, 0, 0]);
  assert.equal(cached.hits, 2 * dataset.size);
});

test('abort stops at a batch boundary with E_ABORTED; the model and the last checkpoint stay usable', async () => {
  const dir = tempDir();
  const checkpoint = path.join(dir, 'model.safetensors');
  const model = await VideoRNN.create({ ...small, seed: 5 });
  try {
    await model.train(dataset, { epochs: 1, batchSize: 2, checkpoint: { path: checkpoint } });
    const saved = fs.readFileSync(checkpoint);
    const controller = new AbortController();
    let batches = 0;
    await assert.rejects(model.train(dataset, { epochs: 5, batchSize: 2, signal: controller.signal, checkpoint: { path: checkpoint },
      onProgress: () => { batches += 1; controller.abort(); } }), { code: 'E_ABORTED' });
    assert.equal(batches, 1);
    assert.deepEqual(fs.readFileSync(checkpoint), saved);
    const restored = await VideoRNN.load(checkpoint);
    assert.equal((await restored.predict(dataset.sample(0).source)).length, 1);
    restored.dispose();
    assert.equal((await model.predict(dataset.sample(1).source)).length, 1);
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a non-finite loss stops training with E_NON_FINITE_LOSS naming the epoch and batch, weights untouched', async () => {
  const dir = tempDir();
  const model = await VideoRNN.create({ ...small, seed: 6 });
  const file = path.join(dir, 'nan.safetensors');
  try {
    await model.save(file);
    const { tensors, metadata } = await readSafetensors(file);
    tensors.get('classifier.2.bias').data[0] = NaN;
    await writeSafetensors(file, tensors, metadata);
    const broken = await VideoRNN.load(file);
    const before = await snapshot(broken, dir, 'before');
    await assert.rejects(broken.train(dataset, { epochs: 2, batchSize: 2 }),
      (error) => error.code === 'E_NON_FINITE_LOSS' && /epoch 1, batch 1 of 2/.test(error.message));
    assert.deepEqual(changed(before, await snapshot(broken, dir, 'after')), []);
    broken.dispose();
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('save then load restores the same predictions to 1e-6', async () => {
  const dir = tempDir();
  const model = await VideoRNN.create({ ...small, seed: 8, sampling: { frames: 4 } });
  try {
    await model.train(dataset, { epochs: 1, batchSize: 4 });
    const file = path.join(dir, 'model.safetensors');
    await model.save(file);
    const loaded = await VideoRNN.load(file);
    assert.deepEqual(loaded.config, model.config);
    const clips = [0, 1, 2].map((index) => dataset.sample(index).source);
    const ours = await model.predict(clips);
    const theirs = await loaded.predict(clips);
    ours.forEach((prediction, row) => classes.forEach((label) =>
      assert.ok(Math.abs(prediction.probabilities[label] - theirs[row].probabilities[label]) < 1e-6)));
    loaded.dispose();
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a validation fraction holds out a stratified split and reports loss and accuracy per epoch', async () => {
  const model = await VideoRNN.create({ ...small, seed: 9 });
  try {
    const events = [];
    const report = await model.train(dataset, { epochs: 2, batchSize: 2, validation: 0.5, onProgress: (event) => events.push(event) });
    assert.equal(report.epochs.length, 2);
    for (const epoch of report.epochs) {
      assert.ok(Number.isFinite(epoch.validation.loss) && epoch.validation.accuracy >= 0 && epoch.validation.accuracy <= 1);
    }
    assert.equal(report.validation.count, 2);
    // Half of the 4 clips train: one batch of 2 per epoch; the other half validates.
    assert.equal(events.filter((event) => event.phase === 'train').length, 2);
    assert.equal(events.filter((event) => event.phase === 'validate').length, 2);
    const whole = await model.evaluate(dataset);
    assert.equal(whole.count, 4);
  } finally {
    model.dispose();
  }
});
