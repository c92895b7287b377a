// `dropout` acts in the head (after its ReLU), so it works with one LSTM layer; training steps
// only, as nn.Dropout. A learning rate of 0 keeps the weights fixed, so any difference between two
// training-mode outputs of the same clip comes from dropout alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

const clip = makeClip(3, 32, 5);

async function outputs(dropout) {
  const native = await addon().createModel({ classes: 3, hiddenSize: 8, headSize: 64, numLayers: 1, dropout, seed: 4 });
  try {
    await native.configureTraining({ optimizer: 'adam', learningRate: 0 });
    const evaluated = [];
    const trained = [];
    for (let round = 0; round < 2; round += 1) {
      evaluated.push((await native.predict([clip])).probabilities);
      trained.push((await native.trainStep([clip], [0])).probabilities);
    }
    evaluated.push((await native.predict([clip])).probabilities);
    return { evaluated, trained };
  } finally {
    native.dispose();
  }
}

test('dropout 0.5 with numLayers 1: training-mode outputs vary, eval outputs do not', async () => {
  const { evaluated, trained } = await outputs(0.5);
  // Half of 64 head units dropped at random: the training outputs move by far more than 1e-3.
  assert.ok(maxAbsDiff(trained[0], trained[1]) > 1e-3, `training outputs differ by ${maxAbsDiff(trained[0], trained[1])}`);
  assert.ok(maxAbsDiff(trained[0], evaluated[0]) > 1e-3, 'a training output equals the eval output');
  // Eval mode: identical before, between and after the training steps (learning rate 0).
  assert.equal(maxAbsDiff(evaluated[0], evaluated[1]), 0);
  assert.equal(maxAbsDiff(evaluated[0], evaluated[2]), 0);
});

test('dropout 0: training-mode outputs equal each other and the eval output', async () => {
  const { evaluated, trained } = await outputs(0);
  assert.ok(maxAbsDiff(trained[0], trained[1]) < 1e-7, `training outputs differ by ${maxAbsDiff(trained[0], trained[1])}`);
  assert.ok(maxAbsDiff(trained[0], evaluated[0]) < 1e-6, `training and eval differ by ${maxAbsDiff(trained[0], evaluated[0])}`);
});
