// The PackedSequence path: outputs follow the caller's order, padding changes nothing, the CNN
// runs on exactly the real frames, and one clip's state never leaks into another's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { VideoRNN } from '../dist/index.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

let model;
const a = makeClip(3, 32, 1);
const b = makeClip(7, 32, 2);
const c = makeClip(5, 32, 3);

before(async () => {
  model = await VideoRNN.create({ classes: ['x', 'y', 'z'], hiddenSize: 24, headSize: 16, frameSize: 32, seed: 7 });
});
after(() => model.dispose());

const rows = (predictions) => predictions.map((p) => model.classes.map((label) => p.probabilities[label]));

test('probabilities follow input order: [a, b, c] equals [c, a, b] permuted', async () => {
  const first = rows(await model.predict([a, b, c], { batchSize: 3 }));
  const second = rows(await model.predict([c, a, b], { batchSize: 3 }));
  assert.ok(maxAbsDiff(first[0], second[1]) < 1e-5);
  assert.ok(maxAbsDiff(first[1], second[2]) < 1e-5);
  assert.ok(maxAbsDiff(first[2], second[0]) < 1e-5);
  // The clips really differ, so the comparison above could have failed.
  assert.ok(maxAbsDiff(first[0], first[1]) > 1e-6);
});

test('a clip alone gives the same output as in a batch with longer clips', async () => {
  const alone = rows(await model.predict([a]))[0];
  const batched = rows(await model.predict([b, a, c], { batchSize: 3 }))[1];
  assert.ok(maxAbsDiff(alone, batched) < 1e-5, `difference ${maxAbsDiff(alone, batched)}`);
});

test('the CNN embeds exactly sum(lengths) frames, never padding', async () => {
  const before = model.stats.framesEmbedded;
  await model.predict([a, b, c], { batchSize: 3 });
  assert.equal(model.stats.framesEmbedded - before, 3 + 7 + 5);
});

test("clip 0's final state does not depend on clip 1 (the seed's h_n.view bug is absent)", async () => {
  const withB = rows(await model.predict([a, b], { batchSize: 2 }))[0];
  const withC = rows(await model.predict([a, c], { batchSize: 2 }))[0];
  assert.ok(maxAbsDiff(withB, withC) < 1e-5);
  const unidirectional = await VideoRNN.create({ classes: ['x', 'y'], hiddenSize: 8, headSize: 8, bidirectional: false, frameSize: 32, seed: 3 });
  try {
    const p1 = (await unidirectional.predict([a, b], { batchSize: 2 }))[0].probabilities;
    const p2 = (await unidirectional.predict([a, c], { batchSize: 2 }))[0].probabilities;
    assert.ok(Math.abs(p1.x - p2.x) < 1e-5);
  } finally {
    unidirectional.dispose();
  }
});

test('predictions carry labels, probabilities summing to 1, and topK in score order', async () => {
  const [prediction] = await model.predict(a, { topK: 2 });
  const total = Object.values(prediction.probabilities).reduce((x, y) => x + y, 0);
  assert.ok(Math.abs(total - 1) < 1e-5);
  assert.equal(prediction.topK.length, 2);
  assert.equal(prediction.topK[0].label, prediction.label);
  assert.ok(prediction.topK[0].score >= prediction.topK[1].score);
  assert.equal(model.classes[prediction.index], prediction.label);
});
