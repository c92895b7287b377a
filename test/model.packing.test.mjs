// The PackedSequence path: outputs follow the caller's order, padding changes nothing, the CNN
// runs on exactly the real frames, and one clip's state never leaks into another's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { VideoRNN } from '../dist/index.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

let model;
// Noise, mid grey and white: with random VGG16 weights two noise clips give nearly the same fc7
// (their outputs differed by only 2e-4), these three differ by 5e-3 to 2e-2.
const shade = (frames, value) => ({ ...makeClip(frames, 32), data: new Uint8Array(frames * 32 * 32 * 3).fill(value) });
const a = makeClip(3, 32, 1);
const b = shade(7, 128);
const c = shade(5, 255);

// One clip's output wherever it sits in a batch agrees to float rounding (below SAME); different
// clips give outputs further apart than DIFFERENT. Three orders of magnitude separate the two, so
// a permutation of the rows cannot pass as "the same".
const SAME = 1e-6;
const DIFFERENT = 1e-3;

before(async () => {
  model = await VideoRNN.create({ classes: ['x', 'y', 'z'], hiddenSize: 24, headSize: 16, frameSize: 32, seed: 7 });
});
after(() => model.dispose());

const rows = (predictions) => predictions.map((p) => model.classes.map((label) => p.probabilities[label]));

test('different clips give different outputs (by more than 1e-3)', async () => {
  const [ra, rb, rc] = rows(await model.predict([a, b, c], { batchSize: 3 }));
  for (const [name, x, y] of [['a/b', ra, rb], ['a/c', ra, rc], ['b/c', rb, rc]]) {
    assert.ok(maxAbsDiff(x, y) > DIFFERENT, `${name}: ${maxAbsDiff(x, y)}`);
  }
});

test('probabilities follow input order: [a, b, c] equals [c, a, b] permuted (to 1e-6)', async () => {
  const first = rows(await model.predict([a, b, c], { batchSize: 3 }));
  const second = rows(await model.predict([c, a, b], { batchSize: 3 }));
  assert.ok(maxAbsDiff(first[0], second[1]) < SAME, `a: ${maxAbsDiff(first[0], second[1])}`);
  assert.ok(maxAbsDiff(first[1], second[2]) < SAME, `b: ${maxAbsDiff(first[1], second[2])}`);
  assert.ok(maxAbsDiff(first[2], second[0]) < SAME, `c: ${maxAbsDiff(first[2], second[0])}`);
});

test('a clip alone gives the same output as in a batch with longer clips', async () => {
  const alone = rows(await model.predict([a]))[0];
  const batched = rows(await model.predict([b, a, c], { batchSize: 3 }))[1];
  assert.ok(maxAbsDiff(alone, batched) < SAME, `difference ${maxAbsDiff(alone, batched)}`);
});

test('the CNN embeds exactly sum(lengths) frames, never padding', async () => {
  const before = model.stats.framesEmbedded;
  await model.predict([a, b, c], { batchSize: 3 });
  assert.equal(model.stats.framesEmbedded - before, 3 + 7 + 5);
});

test("clip 0's final state does not depend on clip 1 (the seed's h_n.view bug is absent)", async () => {
  const withB = rows(await model.predict([a, b], { batchSize: 2 }))[0];
  const withC = rows(await model.predict([a, c], { batchSize: 2 }))[0];
  assert.ok(maxAbsDiff(withB, withC) < SAME, `difference ${maxAbsDiff(withB, withC)}`);
  const unidirectional = await VideoRNN.create({ classes: ['x', 'y'], hiddenSize: 8, headSize: 8, bidirectional: false, frameSize: 32, seed: 3 });
  try {
    const [p1, pb] = await unidirectional.predict([a, b], { batchSize: 2 });
    const [p2, pc] = await unidirectional.predict([a, c], { batchSize: 2 });
    assert.ok(Math.abs(p1.probabilities.x - p2.probabilities.x) < SAME, `difference ${Math.abs(p1.probabilities.x - p2.probabilities.x)}`);
    // b and c themselves differ, so a state leaking from them into a's row would show.
    assert.ok(Math.abs(pb.probabilities.x - pc.probabilities.x) > DIFFERENT, `b/c: ${Math.abs(pb.probabilities.x - pc.probabilities.x)}`);
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
