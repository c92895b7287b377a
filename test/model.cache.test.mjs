// The embedding cache is keyed by the video itself (resolved path, size, times, inode; or the bytes of
// an in-memory clip), never by a dataset-relative id. Each claim is checked by counting the work that
// must have happened (videos decoded, frames embedded, cache hits) and against a cold model.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { makeClip, memoryDataset, tempDir } from './helpers/clips.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const classes = ['left', 'right'];
const options = { classes, hiddenSize: 16, headSize: 8, frameSize: 32, seed: 7 };
const render = (name, seed) => makeSyntheticDataset(path.join(dir, name), { classes, perClass: 2, size: 32, minFrames: 3, maxFrames: 6, seed });
const framesOf = (data) => data.clips.reduce((sum, clip) => sum + clip.frames, 0);

/** What `work` made the model do: decodes, frames through VGG16, cache hits. */
async function counted(model, work) {
  const before = model.stats;
  const result = await work();
  const now = model.stats;
  return { result, decoded: now.videosDecoded - before.videosDecoded, embedded: now.framesEmbedded - before.framesEmbedded,
    hits: now.embeddingCacheHits - before.embeddingCacheHits };
}

/** `data` evaluated by a new model with the same weights and an empty cache. */
async function coldEvaluation(model, name, data) {
  const file = path.join(dir, `${name}.safetensors`);
  await model.save(file);
  const fresh = await VideoRNN.load(file);
  try {
    return await fresh.evaluate(data);
  } finally {
    fresh.dispose();
  }
}

test('two folders with the same layout and different pixels never share cache entries', async () => {
  const first = await render('a', 1);
  const second = await render('b', 2);
  assert.deepEqual(Array.from({ length: first.size }, (_, i) => first.sample(i).id),
    Array.from({ length: second.size }, (_, i) => second.sample(i).id), 'the two folders have the same relative layout');
  const model = await VideoRNN.create(options);
  try {
    const a = await counted(model, () => model.evaluate(first));
    assert.deepEqual([a.decoded, a.embedded, a.hits], [first.size, framesOf(first), 0]);
    const b = await counted(model, () => model.evaluate(second));
    assert.deepEqual([b.decoded, b.embedded, b.hits], [second.size, framesOf(second), 0], 'every clip of the second folder is decoded');
    const reference = await coldEvaluation(model, 'layout', second);
    assert.equal(b.result.loss, reference.loss, 'the same loss as a model that never saw the first folder');
    assert.ok(Math.abs(b.result.loss - a.result.loss) > 1e-4, `different pixels give different losses (${a.result.loss} vs ${b.result.loss})`);
    // Both folders are now cached side by side.
    const again = await counted(model, () => model.evaluate(second));
    assert.deepEqual([again.decoded, again.embedded, again.hits], [0, 0, second.size]);
    assert.equal(again.result.loss, reference.loss);
    assert.equal(model.stats.embeddingCacheEntries, first.size + second.size);
    assert.equal(model.stats.embeddingCacheBytes, (framesOf(first) + framesOf(second)) * 4096 * 4);
  } finally {
    model.dispose();
  }
});

test('evaluate(test) after train(train) decodes and embeds every test video and matches a cold model', async () => {
  const train = await render('train', 3);
  const held = await render('test', 4);
  const model = await VideoRNN.create(options);
  try {
    const training = await counted(model, () => model.train(train, { epochs: 2, batchSize: 2, seed: 1 }));
    assert.deepEqual([training.decoded, training.embedded, training.hits], [train.size, framesOf(train), train.size]);
    const evaluation = await counted(model, () => model.evaluate(held));
    assert.deepEqual([evaluation.decoded, evaluation.embedded, evaluation.hits], [held.size, framesOf(held), 0]);
    const reference = await coldEvaluation(model, 'trained', held);
    assert.equal(evaluation.result.loss, reference.loss);
    assert.deepEqual(evaluation.result.confusion, reference.confusion);
  } finally {
    model.dispose();
  }
});

test('a file rewritten in place (same inode) loses its entry; the others stay cached', async () => {
  const data = await render('rewrite', 5);
  const other = await render('rewrite-source', 6);
  const model = await VideoRNN.create(options);
  try {
    await model.evaluate(data);
    const cached = await counted(model, () => model.evaluate(data));
    assert.deepEqual([cached.decoded, cached.hits], [0, data.size]);
    const target = data.sample(0).source;
    const inode = fs.statSync(target).ino;
    fs.writeFileSync(target, fs.readFileSync(other.sample(0).source));
    assert.equal(fs.statSync(target).ino, inode, 'rewritten in place');
    const after = await counted(model, () => model.evaluate(data));
    assert.deepEqual([after.decoded, after.embedded, after.hits], [1, other.clips[0].frames, data.size - 1]);
    assert.equal(after.result.loss, (await coldEvaluation(model, 'rewrite', data)).loss);
  } finally {
    model.dispose();
  }
});

test('in-memory clips are keyed by their bytes: same ids with other pixels miss, a buffer changed in place misses', async () => {
  const clips = [makeClip(3, 32, 1), makeClip(4, 32, 2)];
  const first = memoryDataset(classes, clips.map((clip, index) => ({ clip, label: index })));
  const second = memoryDataset(classes, [makeClip(3, 32, 3), makeClip(4, 32, 4)].map((clip, index) => ({ clip, label: index })));
  const model = await VideoRNN.create(options);
  try {
    await model.evaluate(first);
    const same = await counted(model, () => model.evaluate(first));
    assert.deepEqual([same.embedded, same.hits], [0, 2]);
    const other = await counted(model, () => model.evaluate(second));
    assert.deepEqual([other.embedded, other.hits], [7, 0]);
    clips[0].data[0] ^= 0xff;
    const changed = await counted(model, () => model.evaluate(first));
    assert.deepEqual([changed.embedded, changed.hits], [3, 1]);
  } finally {
    model.dispose();
  }
});

test('clearCache() empties the cache; the next pass decodes again', async () => {
  const data = await render('clear', 8);
  const model = await VideoRNN.create(options);
  try {
    await model.evaluate(data);
    assert.equal(model.stats.embeddingCacheEntries, data.size);
    assert.equal(model.stats.embeddingCacheBytes, framesOf(data) * 4096 * 4);
    model.clearCache();
    assert.equal(model.stats.embeddingCacheEntries, 0);
    assert.equal(model.stats.embeddingCacheBytes, 0);
    const again = await counted(model, () => model.evaluate(data));
    assert.deepEqual([again.decoded, again.embedded, again.hits], [data.size, framesOf(data), 0]);
    // Called while a pass runs, the clear waits for it, so that pass still finds its entries.
    const running = counted(model, () => model.evaluate(data));
    model.clearCache();
    const during = await running;
    assert.deepEqual([during.decoded, during.hits], [0, data.size]);
    await model.save(path.join(dir, 'clear.safetensors')); // queued after the clear
    assert.equal(model.stats.embeddingCacheEntries, 0);
  } finally {
    model.dispose();
  }
  assert.throws(() => model.clearCache(), { code: 'E_DISPOSED' });
});
