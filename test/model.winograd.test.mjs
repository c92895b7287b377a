// The Winograd F(4x4, 3x3) convolutions (native/winograd.h): each products kernel against LibTorch's
// dense convolution, layer by layer, and the engine's count of which convolution path ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { VideoRNN, backendInfo } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

const run = promisify(execFile);
const kernels = ['baseline', 'avx2', 'avx512'];
const available = backendInfo().winogradKernels;
// A kernel this CPU lacks is skipped with the reason, never passed.
const skipReason = (kernel) => (available.includes(kernel) ? false
  : `this CPU has no ${kernel === 'avx512' ? 'AVX-512F' : 'AVX2 and FMA'}: the ${kernel} kernel cannot run here (kernels here: ${available.join(', ')})`);

// VGG16's convolutions after conv1_1 (the first takes 3 channels and stays with oneDNN), as
// [in, out, scale]: each runs on the frame's size divided by `scale`.
const layers = [[64, 64, 1], [64, 128, 2], [128, 128, 2], [128, 256, 4], [256, 256, 4], [256, 512, 8], [512, 512, 8], [512, 512, 16]];
// Frame sizes whose maps end in partial 4x4 tiles (48 px: 3 px at conv5; 56: 7 and 14 px; 72: 9 and
// 18 px) and a non-square frame, on two threads; one and four threads on one size each. Batch 2 on
// the non-square one, so that tiles run on past one image.
const framesByThreads = { 1: [[56, 56, 1]], 2: [[48, 48, 1], [56, 56, 1], [72, 72, 1], [40, 72, 2]], 4: [[40, 72, 2]] };
// F(4x4, 3x3) rounds more than a direct convolution: on normal data its largest error grew from
// 0.6e-5 of the layer's largest value at 64 channels to 1.6e-5 at 512, the same for every kernel.
const tolerance = 2e-5;

/** Every layer of every frame size through `kernel` on `threads` threads, against the dense convolution. */
function compareLayers(kernel, threads) {
  let seed = 1;
  for (const [height, width, batch] of framesByThreads[threads]) {
    for (const [inChannels, out, scale] of layers) {
      const shape = { batch, in: inChannels, out, height: Math.floor(height / scale), width: Math.floor(width / scale) };
      const { winograd, dense } = addon().winogradForTesting({ kernel, threads, seed: seed++, ...shape });
      let largest = 0;
      for (const value of dense) largest = Math.max(largest, Math.abs(value));
      assert.ok(largest > 0.1, `${JSON.stringify(shape)}: the dense result is not all zeros`);
      const diff = maxAbsDiff(winograd, dense);
      assert.ok(diff <= tolerance * largest, `${kernel}, ${threads} thread(s), ${JSON.stringify(shape)}: ` +
        `max difference ${diff.toExponential(2)}, ${(diff / largest).toExponential(2)} of the largest value ${largest.toFixed(2)}`);
    }
  }
}

for (const kernel of kernels) {
  for (const threads of [1, 2, 4]) {
    test(`the ${kernel} kernel equals LibTorch's dense convolution per layer to 2e-5 of its largest value, ${threads} thread(s)`,
      { skip: skipReason(kernel) }, () => compareLayers(kernel, threads));
  }
}

test('an unknown or unavailable kernel for the test entry point is refused with E_INVALID_ARGUMENT', () => {
  const shape = { threads: 1, batch: 1, in: 8, out: 16, height: 4, width: 4, seed: 1 };
  assert.throws(() => addon().winogradForTesting({ kernel: 'avx3', ...shape }), { code: 'E_INVALID_ARGUMENT' });
});

const zero = { winogradAvx512: 0, winogradAvx2: 0, winogradBaseline: 0, onednn: 0, onednnBf16: 0, dense: 0 };
const counterOf = { baseline: 'winogradBaseline', avx2: 'winogradAvx2', avx512: 'winogradAvx512' };
const size = 36;
const clip = makeClip(3, size, 9);
// Seeded weights: every model here has the same VGG16, so their fc7 compare.
const options = { classes: ['a', 'b'], hiddenSize: 8, frameSize: size, seed: 5, threads: 2 };
let reference;  // fc7 of `clip` through LibTorch's dense convolutions

test("LibTorch's dense path counts its 13 convolutions as dense", async () => {
  const native = await addon().createModel({ classes: 2, hiddenSize: 8, seed: 5, threads: 2, prepackedConvolutions: false });
  try {
    [reference] = await native.embed([clip]);
    assert.deepEqual(native.counters().convolutions, { ...zero, dense: 13 });
  } finally {
    native.dispose();
  }
});

test('by default the best kernel this CPU has runs conv1_2 to conv5_3, oneDNN conv1_1; stats count them, fc7 agrees', async () => {
  const model = await VideoRNN.create(options);
  try {
    assert.deepEqual(model.stats.convolutions, zero);
    const [fc7] = await model.embed(clip);
    await model.embed(makeClip(1, size, 10));
    // One chunk per call: two forwards of the 13 convolutions.
    assert.deepEqual(model.stats.convolutions, { ...zero, [counterOf[available[0]]]: 24, onednn: 2 });
    const scale = Math.max(...reference.map(Math.abs));
    assert.ok(scale > 1e-4, 'fc7 is not all zeros');
    const diff = maxAbsDiff(fc7, reference);
    assert.ok(diff <= 1e-4 * scale, `fc7 differs from the dense path's by ${diff} (largest ${scale})`);
  } finally {
    model.dispose();
  }
});

// A child process, so that VIDEO_RNN_TUNING is read afresh: its model's convolution counts and fc7.
const child = `
  import { VideoRNN } from './dist/index.js';
  const model = await VideoRNN.create(${JSON.stringify(options)});
  const clip = JSON.parse(process.argv[1]);
  const [fc7] = await model.embed({ ...clip, data: Uint8Array.from(clip.data) });
  process.stdout.write(JSON.stringify({ convolutions: model.stats.convolutions, fc7: Array.from(fc7) }));
  model.dispose();
`;
async function forward(tuning) {
  const argument = JSON.stringify({ ...clip, data: Array.from(clip.data) });
  const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', child, argument],
    { env: { ...process.env, VIDEO_RNN_TUNING: tuning }, maxBuffer: 1 << 26 });
  return JSON.parse(stdout);
}

test('VIDEO_RNN_TUNING=winogradKernel forces a kernel other than the default: the count names it, fc7 agrees', async (t) => {
  const kernel = available[1];
  if (!kernel) {
    t.skip(`this CPU runs only the ${available[0]} kernel: there is no other to force`);
    return;
  }
  const result = await forward(`winogradKernel=${kernel}`);
  assert.deepEqual(result.convolutions, { ...zero, [counterOf[kernel]]: 12, onednn: 1 });
  const scale = Math.max(...reference.map(Math.abs));
  const diff = maxAbsDiff(result.fc7, reference);
  assert.ok(diff <= 1e-4 * scale, `${kernel}: fc7 differs from the dense path's by ${diff} (largest ${scale})`);
});

test('forcing an unknown kernel, or one this CPU lacks, fails the model with E_INVALID_ARGUMENT', async (t) => {
  await assert.rejects(forward('winogradKernel=avx3'), /E_INVALID_ARGUMENT/);
  const missing = kernels.find((kernel) => !available.includes(kernel));
  if (!missing) {
    t.diagnostic(`this CPU runs every kernel (${available.join(', ')}): no unavailable kernel to force`);
    return;
  }
  await assert.rejects(forward(`winogradKernel=${missing}`), /E_INVALID_ARGUMENT/);
});
