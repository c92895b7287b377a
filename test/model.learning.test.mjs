// End to end on real video files: the model learns a class that only the frame ORDER reveals,
// and with the embedding cache later epochs neither decode nor run the CNN. The test set has the
// same layout as the training set (left/left_000.mp4, ...) and other pixels: its accuracy counts
// only if every one of its videos was decoded and embedded during the evaluation.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { tempDir } from './helpers/clips.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('learns left vs right motion to >= 0.9 accuracy on a separate synthetic test set; epoch 2 is served from the cache', async (t) => {
  const classes = ['left', 'right'];
  const train = await makeSyntheticDataset(path.join(dir, 'train'), { classes, perClass: 16, seed: 1 });
  const held = await makeSyntheticDataset(path.join(dir, 'test'), { classes, perClass: 8, seed: 2 });
  const model = await VideoRNN.create({ classes: train.classes, hiddenSize: 128, frameSize: 64, seed: 1 });
  try {
    const atEpochEnd = [];
    const report = await model.train(train, { epochs: 15, batchSize: 8, learningRate: 1e-3, seed: 1,
      onProgress: (event) => { if (event.batch === event.batches) atEpochEnd.push({ ...model.stats }); } });
    assert.equal(report.epochs.length, 15);
    const frames = train.clips.reduce((sum, clip) => sum + clip.frames, 0);
    // Epoch 1 decodes every video and embeds every real frame; epoch 2 does neither.
    const work = ({ framesEmbedded, embeddingCacheHits, videosDecoded, embeddingCacheEntries }) =>
      ({ framesEmbedded, embeddingCacheHits, videosDecoded, embeddingCacheEntries });
    assert.deepEqual(work(atEpochEnd[0]), { framesEmbedded: frames, embeddingCacheHits: 0, videosDecoded: train.size, embeddingCacheEntries: train.size });
    assert.deepEqual(work(atEpochEnd[1]), { framesEmbedded: frames, embeddingCacheHits: train.size, videosDecoded: train.size,
      embeddingCacheEntries: train.size });
    assert.ok(report.epochs[1].seconds < report.epochs[0].seconds / 5, 'a cached epoch is much cheaper');
    const before = work(model.stats);
    const evaluation = await model.evaluate(held);
    const heldFrames = held.clips.reduce((sum, clip) => sum + clip.frames, 0);
    assert.deepEqual(work(model.stats), { framesEmbedded: before.framesEmbedded + heldFrames, embeddingCacheHits: before.embeddingCacheHits,
      videosDecoded: before.videosDecoded + held.size, embeddingCacheEntries: train.size + held.size }, 'every test clip was decoded and embedded');
    assert.equal(evaluation.count, held.size);
    t.diagnostic(`held-out accuracy ${evaluation.accuracy} on ${held.size} clips never trained on`);
    assert.ok(evaluation.accuracy >= 0.9, `test accuracy ${evaluation.accuracy}, confusion ${JSON.stringify(evaluation.confusion)}`);
    const predictions = await model.predict(held.clips.map((_, index) => held.sample(index).source));
    const correct = predictions.filter((prediction, index) => prediction.index === held.sample(index).label).length;
    assert.equal(correct / held.size, evaluation.accuracy);
  } finally {
    model.dispose();
  }
});
