// CUDA: device selection, predict and one training step equal to the CPU within float tolerance,
// and bf16 autocast close to fp32. Run by bench/gpu.sh on a machine with an NVIDIA GPU and a CUDA
// LibTorch; it fails (never skips) without one. In-memory clips: no ffmpeg is needed there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, backendInfo } from '../../dist/index.js';
import { makeClip, maxAbsDiff, maxParameterDifference, memoryDataset, tempDir } from '../helpers/clips.mjs';

const info = backendInfo();
const small = { classes: ['a', 'b', 'c'], hiddenSize: 32, headSize: 16, frameSize: 64, seed: 3 };
const clips = [makeClip(5, 64, 1), makeClip(9, 64, 2), makeClip(3, 64, 3), makeClip(7, 64, 4)];
const dir = tempDir('video-rnn-cuda-');
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function rows(predictions) {
  return predictions.map((p) => Float32Array.from(small.classes.map((label) => p.probabilities[label])));
}

async function cpuAndCuda(precision = 'fp32') {
  const file = path.join(dir, 'start.safetensors');
  if (!fs.existsSync(file)) {
    const model = await VideoRNN.create({ ...small, device: 'cpu' });
    await model.save(file);
    model.dispose();
  }
  return Promise.all([VideoRNN.load(file, { device: 'cpu' }), VideoRNN.load(file, { device: 'cuda', precision })]);
}

test('this LibTorch sees CUDA, and auto picks it', async () => {
  assert.equal(info.cuda, true, 'the addon was built against a LibTorch without CUDA, or no GPU is visible');
  assert.ok(info.cudaDevices >= 1);
  const model = await VideoRNN.create({ ...small });
  assert.equal(model.device, 'cuda:0');
  model.dispose();
  await assert.rejects(VideoRNN.create({ ...small, device: `cuda:${info.cudaDevices}` }), { code: 'E_CUDA_UNAVAILABLE' });
});

test('predict on CUDA in fp32 equals the CPU', async () => {
  const [cpu, cuda] = await cpuAndCuda('fp32');
  const difference = maxAbsDiff(rows(await cpu.predict(clips)).flatMap((r) => [...r]),
    rows(await cuda.predict(clips)).flatMap((r) => [...r]));
  cpu.dispose();
  cuda.dispose();
  console.log(`cuda fp32 vs cpu: max probability difference ${difference}`);
  assert.ok(difference < 1e-4, `difference ${difference}`);
});

test('bf16 autocast on CUDA stays close to fp32 and agrees on the top class', async () => {
  const [cpu, cuda] = await cpuAndCuda('bf16');
  const reference = rows(await cpu.predict(clips));
  const low = rows(await cuda.predict(clips));
  cpu.dispose();
  cuda.dispose();
  const difference = maxAbsDiff(reference.flatMap((r) => [...r]), low.flatMap((r) => [...r]));
  console.log(`cuda bf16 vs cpu fp32: max probability difference ${difference}`);
  assert.ok(difference < 5e-2, `difference ${difference}`);
});

test('embeddings on CUDA equal the CPU', async () => {
  const [cpu, cuda] = await cpuAndCuda('fp32');
  const [a, b] = await Promise.all([cpu.embed(clips.slice(0, 2)), cuda.embed(clips.slice(0, 2))]);
  cpu.dispose();
  cuda.dispose();
  const difference = Math.max(...a.map((rowsA, i) => maxAbsDiff(rowsA, b[i])));
  const scale = Math.max(...a.map((rowsA) => Math.max(...rowsA.map(Math.abs))));
  console.log(`cuda vs cpu fc7: max difference ${difference} (values up to ${scale})`);
  assert.ok(difference < 1e-3 * Math.max(1, scale), `difference ${difference}`);
});

test('two SGD steps on CUDA leave the same weights as on the CPU', async () => {
  const [cpu, cuda] = await cpuAndCuda('fp32');
  const data = memoryDataset(small.classes, clips.map((clip, i) => ({ clip, label: i % 3 })));
  const options = { epochs: 1, batchSize: 2, optimizer: 'sgd', learningRate: 0.05, shuffle: false, cacheEmbeddings: false };
  await cpu.train(data, options);
  await cuda.train(data, options);
  const files = [path.join(dir, 'cpu.safetensors'), path.join(dir, 'cuda.safetensors')];
  await cpu.save(files[0]);
  await cuda.save(files[1]);
  cpu.dispose();
  cuda.dispose();
  const difference = await maxParameterDifference(files[0], files[1]);
  const moved = await maxParameterDifference(files[0], path.join(dir, 'start.safetensors'));
  console.log(`cuda vs cpu after 2 steps: max parameter difference ${difference} (moved ${moved})`);
  assert.ok(moved > 1e-4, 'training changed the weights');
  assert.ok(difference < 1e-4, `difference ${difference}`);
});

test('bf16 fc7 on CUDA is within 5% (of the largest value) of CUDA fp32, and is not fp32 itself', async () => {
  const fc7 = async (precision) => {
    const model = await VideoRNN.create({ ...small, device: 'cuda', precision });
    try {
      return await model.embed(clips.slice(0, 2));
    } finally {
      model.dispose();
    }
  };
  const full = await fc7('fp32');
  const half = await fc7('bf16');
  full.forEach((reference, index) => {
    const error = maxAbsDiff(half[index], reference) / Math.max(...reference.map(Math.abs));
    console.log(`clip ${index}: bf16 vs fp32 fc7 relative error ${error}`);
    assert.ok(error < 0.05 && error > 1e-4, `clip ${index}: relative error ${error}`);
  });
});
