// The random VGG16 a model starts from without backboneWeights: torchvision's initialisation
// (kaiming-normal convolutions with fan_out and ReLU gain, N(0, 0.01) for fc6 and fc7, zero biases),
// and for a given seed the same weights whatever the thread count.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, readSafetensors } from '../dist/index.js';
import { tempDir } from './helpers/clips.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const options = { classes: ['a', 'b'], hiddenSize: 8, headSize: 8, frameSize: 32 };

async function backboneOf(extra, name) {
  const model = await VideoRNN.create({ ...options, ...extra });
  try {
    const file = path.join(dir, `${name}.safetensors`);
    await model.saveBackbone(file);
    return file;
  } finally {
    model.dispose();
  }
}

function moments(values) {
  let sum = 0;
  let squares = 0;
  for (const value of values) {
    sum += value;
    squares += value * value;
  }
  const mean = sum / values.length;
  return { mean, std: Math.sqrt(squares / values.length - mean * mean) };
}

let seven;
before(async () => {
  seven = await backboneOf({ seed: 7, threads: 2 }, 'seed-7-threads-2');
});

test('a seed makes the same VGG16 on 1 and 2 threads; another seed makes another', async () => {
  const oneThread = await backboneOf({ seed: 7, threads: 1 }, 'seed-7-threads-1');
  assert.ok(fs.readFileSync(oneThread).equals(fs.readFileSync(seven)), 'seed 7: the same bytes on 1 and 2 threads');
  const eight = (await readSafetensors(await backboneOf({ seed: 8, threads: 2 }, 'seed-8'))).tensors;
  const tensors = (await readSafetensors(seven)).tensors;
  for (const name of ['features.0.weight', 'classifier.0.weight', 'classifier.3.weight']) {
    const [a, b] = [tensors.get(name).data, eight.get(name).data];
    let same = 0;
    for (let i = 0; i < 1000; i += 1) if (a[i] === b[i]) same += 1;
    assert.ok(same < 10, `${name}: seeds 7 and 8 share ${same} of the first 1000 values`);
  }
});

test("fc6, fc7 and the convolutions follow torchvision's initialisation", async () => {
  const { tensors } = await readSafetensors(seven);
  for (const name of ['classifier.0.weight', 'classifier.3.weight']) {
    const { data, shape } = tensors.get(name);
    assert.equal(data.length, shape[0] * shape[1]);
    const { mean, std } = moments(data);
    assert.ok(Math.abs(mean) < 1e-4 && Math.abs(std - 0.01) < 1e-4, `${name}: mean ${mean}, std ${std} (N(0, 0.01) expected)`);
    // Chunks are filled from separate generators: no stretch repeats another.
    const chunk = 1 << 20;
    if (data.length > 2 * chunk) {
      assert.notDeepEqual(data.subarray(0, 64), data.subarray(chunk, chunk + 64), `${name}: the second chunk repeats the first`);
    }
  }
  for (const name of ['classifier.0.bias', 'classifier.3.bias', 'features.0.bias', 'features.28.bias']) {
    assert.ok(tensors.get(name).data.every((value) => value === 0), `${name} is zero`);
  }
  // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / (out_channels * 3 * 3)).
  for (const name of ['features.0.weight', 'features.10.weight', 'features.28.weight']) {
    const { data, shape } = tensors.get(name);
    const expected = Math.sqrt(2 / (shape[0] * 9));
    const { mean, std } = moments(data);
    assert.ok(Math.abs(mean) < expected * 0.05 && Math.abs(std / expected - 1) < 0.03,
      `${name}: mean ${mean}, std ${std} (${expected} expected)`);
  }
});
