// The `momentum` option against torch.optim.SGD. SGD's first step is the plain gradient step whatever
// the momentum (PyTorch starts the buffer at the first gradient), so the check runs three steps on one
// batch: the second and third steps carry 0.9x or 0.5x of the earlier gradients, and only the same
// momentum gives the same weights.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, readSafetensors } from '../dist/index.js';
import { makeClip, memoryDataset, referencePython, tempDir } from './helpers/clips.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const classes = ['a', 'b', 'c'];
const lengths = [3, 5, 2, 4];
const labels = [0, 2, 1, 2];
const clips = lengths.map((length, index) => makeClip(length, 32, 40 + index));
const data = memoryDataset(classes, clips.map((clip, index) => ({ clip, label: labels[index] })));
const options = { classes, hiddenSize: 6, headSize: 5, frameSize: 32, seed: 11 };
const steps = 3;
const learningRate = 0.5;
const momenta = [0.9, 0.5, 0];

/** The LSTM and head of a checkpoint as one vector, in name order. */
async function trainedVector(file) {
  const { tensors } = await readSafetensors(file);
  const names = [...tensors.keys()].filter((name) => !name.startsWith('embedding.')).sort();
  return Float64Array.from(names.flatMap((name) => Array.from(tensors.get(name).data)));
}

/** |ours - theirs| / |theirs - start|: how far apart two updates are, relative to the update itself. */
function relativeUpdateError(start, ours, theirs) {
  let difference = 0;
  let update = 0;
  for (let i = 0; i < start.length; i += 1) {
    difference += (ours[i] - theirs[i]) ** 2;
    update += (theirs[i] - start[i]) ** 2;
  }
  return Math.sqrt(difference / update);
}

test(`SGD matches torch.optim.SGD over ${steps} steps with the default momentum (0.9), 0.5 and 0, and no other momentum does`, async (t) => {
  // Every model starts from the same seeded weights; PyTorch trains copies of them once per momentum.
  const initial = path.join(dir, 'initial.safetensors');
  const first = await VideoRNN.create(options);
  await first.save(initial);
  first.dispose();
  fs.writeFileSync(path.join(dir, 'clips.bin'), Buffer.concat(clips.map((clip) => clip.data)));
  execFileSync(referencePython, [path.resolve('test/helpers/sgd_reference.py'), initial, path.join(dir, 'clips.bin'), lengths.join(','),
    '32', '32', labels.join(','), String(learningRate), momenta.join(','), String(steps), dir], { stdio: 'inherit' });
  const start = await trainedVector(initial);
  const references = await Promise.all(momenta.map((momentum) => trainedVector(path.join(dir, `momentum-${momentum}.safetensors`))));
  for (const momentum of [undefined, 0.5, 0]) {
    const model = await VideoRNN.create(options);
    try {
      const before = path.join(dir, 'before.safetensors');
      await model.save(before);
      assert.deepEqual(await trainedVector(before), start, 'the same seeded start');
      await model.train(data, { epochs: steps, batchSize: lengths.length, shuffle: false, optimizer: 'sgd', learningRate,
        ...(momentum === undefined ? {} : { momentum }) });
      const trained = path.join(dir, 'trained.safetensors');
      await model.save(trained);
      const ours = await trainedVector(trained);
      momenta.forEach((candidate, index) => {
        const error = relativeUpdateError(start, ours, references[index]);
        t.diagnostic(`momentum ${momentum ?? 'default'} against PyTorch's ${candidate}: relative error ${error.toExponential(2)}`);
        if (candidate === (momentum ?? 0.9)) assert.ok(error < 1e-3, `momentum ${candidate}: relative error ${error}`);
        else assert.ok(error > 0.05, `momentum ${candidate} should differ, relative error ${error}`);
      });
    } finally {
      model.dispose();
    }
  }
});

test('momentum is checked: a number from 0 to 1, and only with SGD', async () => {
  const model = await VideoRNN.create(options);
  try {
    for (const momentum of [-0.1, 1.5, Number.NaN, '0.9']) {
      await assert.rejects(model.train(data, { epochs: 1, optimizer: 'sgd', momentum }), { code: 'E_INVALID_ARGUMENT' });
    }
    await assert.rejects(model.train(data, { epochs: 1, momentum: 0.9 }), (error) => error.code === 'E_INVALID_ARGUMENT' && /sgd/.test(error.message));
    assert.equal(model.stats.framesEmbedded, 0, 'refused before any step');
  } finally {
    model.dispose();
  }
});
