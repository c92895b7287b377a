// Work runs off the event loop, and concurrent calls on one model queue instead of racing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { VideoRNN } from '../dist/index.js';
import { makeClip } from './helpers/clips.mjs';

let model;
before(async () => { model = await VideoRNN.create({ classes: ['a', 'b', 'c'], hiddenSize: 8, frameSize: 64, seed: 2 }); });
after(() => model.dispose());

test('a timer keeps ticking during a long forward', async () => {
  const clips = [makeClip(12, 96, 1), makeClip(10, 96, 2), makeClip(8, 96, 3)];
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 10);
  const started = performance.now();
  await model.predict(clips, { batchSize: 3 });
  const elapsed = performance.now() - started;
  clearInterval(timer);
  assert.ok(elapsed > 300, `the forward took ${elapsed} ms: too short to tell`);
  // A blocked loop would tick at most once; an idle one about elapsed / 10 times.
  assert.ok(ticks >= elapsed / 10 / 3, `${ticks} ticks in ${elapsed.toFixed(0)} ms`);
});

test('100 concurrent predicts all resolve and equal the sequential results', async () => {
  const clips = Array.from({ length: 5 }, (_, index) => makeClip(1 + index, 32, 50 + index));
  const sequential = [];
  for (const clip of clips) sequential.push((await model.predict(clip))[0].probabilities);
  const concurrent = await Promise.all(Array.from({ length: 100 }, (_, index) => model.predict(clips[index % 5])));
  concurrent.forEach(([prediction], index) => {
    for (const label of model.classes) {
      assert.ok(Math.abs(prediction.probabilities[label] - sequential[index % 5][label]) < 1e-6);
    }
  });
});

test('predict issued during training waits for it (calls on one model run in call order)', async () => {
  const data = {
    classes: model.classes,
    size: 3,
    sample: (index) => ({ id: `s${index}`, label: index, source: makeClip(2, 32, index) }),
  };
  const events = [];
  const training = model.train(data, { epochs: 2, batchSize: 1, onProgress: () => events.push('batch') })
    .then(() => events.push('trained'));
  const predicting = model.predict(makeClip(2, 32)).then(() => events.push('predicted'));
  await Promise.all([training, predicting]);
  assert.deepEqual(events.slice(-2), ['trained', 'predicted']);
  assert.equal(events.filter((event) => event === 'batch').length, 6);
});
