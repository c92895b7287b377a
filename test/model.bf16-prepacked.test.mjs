// precision 'bf16' on a CPU with native bf16: VGG16's convolutions prepacked in bf16 in inference
// mode (native/prepacked_features.h) against LibTorch's autocast path over the same weights and
// frames, the engine's count of the path that ran, and the VIDEO_RNN_TUNING switch that turns it off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { VideoRNN, backendInfo } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

const run = promisify(execFile);
const { native: nativeBf16, features } = backendInfo().cpuBf16;
// Without native bf16 the path never runs: those tests are skipped with the reason, never passed.
const skip = nativeBf16 ? false
  : `this CPU has no native bf16 (neither avx512_bf16 nor amx_bf16; found: ${features.join(', ') || 'none'}): precision 'bf16' stays on autocast's path`;

const zero = { winogradAvx512: 0, winogradAvx2: 0, winogradBaseline: 0, onednn: 0, onednnBf16: 0, dense: 0 };
const size = 40;
const clip = makeClip(3, size, 21);
const other = makeClip(3, size, 22);
// Seeded weights: every model here has the same VGG16.
const options = { classes: ['a', 'b'], hiddenSize: 8, frameSize: size, seed: 5, threads: 2, precision: 'bf16' };
// Both paths round the same frames and weights to bf16 (8-bit mantissa: one unit in the last place
// is 2^-8 = 0.0039 of a value) and accumulate in fp32; they differ only in oneDNN's kernels and
// their order of summation, so a layer's output may differ by a unit in the last place, and that
// difference goes on through the 15 layers. Measured on an AMX CPU with LibTorch 1.13: 6.2e-3 of
// fc7's largest value (1.6 units) at most; with zero biases the two were bit for bit the same.
// Four units, 2^-6, bound it; fc7 of another clip differs by 0.11, far outside (checked below).
const tolerance = 2 ** -6;
const relative = (a, b) => maxAbsDiff(a, b) / Math.max(...b.map(Math.abs));

// VGG16's biases start at zero; these make them matter. Autocast adds a bias rounded to bf16,
// the prepacked path adds it in fp32: one more source of last-place differences.
function biases(native) {
  return native.shapes().filter(({ name }) => name.startsWith('embedding.') && name.endsWith('.bias')).map(({ name, shape }, layer) => ({
    name, shape, data: Float32Array.from({ length: shape[0] }, (_, index) => 0.05 * Math.sin(index * 0.7 + layer)),
  }));
}

async function embedNative(config, clips, withBiases = true) {
  const native = await addon().createModel({ classes: 2, hiddenSize: 8, seed: 5, threads: 2, precision: 'bf16', ...config });
  try {
    if (withBiases) await native.loadState(biases(native), '', false);
    const result = await native.embed(clips);
    return { result, convolutions: native.counters().convolutions };
  } finally {
    native.dispose();
  }
}

test('bf16 prepacked fc7 is within 2^-6 of bf16 autocast on the same weights and frames; another clip is not', { skip }, async (t) => {
  const autocast = await embedNative({ bf16PrepackedConvolutions: false }, [clip, other]);
  // Both clips go through VGG16 as one chunk: one forward of the 13 convolutions.
  assert.deepEqual(autocast.convolutions, { ...zero, dense: 13 });
  const prepacked = await embedNative({ bf16PrepackedConvolutions: true }, [clip, other]);
  assert.deepEqual(prepacked.convolutions, { ...zero, onednnBf16: 13 });
  prepacked.result.forEach((fc7, index) => {
    const reference = autocast.result[index];
    assert.ok(Math.max(...reference.map(Math.abs)) > 1e-3, `clip ${index}: autocast's fc7 is not all zeros`);
    const error = relative(fc7, reference);
    t.diagnostic(`clip ${index}: relative difference ${error.toExponential(2)}`);
    assert.ok(error <= tolerance, `clip ${index}: relative difference ${error.toExponential(2)}`);
  });
  // The tolerance can tell clips apart: the other clip's fc7 is far outside it.
  const apart = relative(autocast.result[1], autocast.result[0]);
  t.diagnostic(`another clip: relative difference ${apart.toExponential(2)}`);
  assert.ok(apart > 4 * tolerance, `two different clips differ by only ${apart.toExponential(2)} of the largest value`);
});

test("VideoRNN.create with precision 'bf16' runs the prepacked bf16 path by default, and model.stats counts it", { skip }, async () => {
  const model = await VideoRNN.create(options);
  try {
    assert.deepEqual(model.stats.convolutions, zero);
    const [fc7] = await model.embed(clip);
    await model.predict(other);
    // Two forwards of the 13 convolutions, none through autocast's dense path.
    assert.deepEqual(model.stats.convolutions, { ...zero, onednnBf16: 26 });
    // VideoRNN's VGG16 keeps its zero biases: so does this reference.
    const autocast = await embedNative({ bf16PrepackedConvolutions: false }, [clip], false);
    const error = relative(fc7, autocast.result[0]);
    assert.ok(error <= tolerance, `relative difference ${error.toExponential(2)} from autocast's fc7`);
  } finally {
    model.dispose();
  }
});

test("bf16 evaluate, and training with the convolutions frozen, embed through the prepacked path; training conv5_3 takes autocast's", { skip }, async () => {
  const native = await addon().createModel({ classes: 2, hiddenSize: 8, seed: 5, threads: 2, precision: 'bf16', bf16PrepackedConvolutions: true });
  try {
    const evaluated = await native.evaluate([clip, other], [0, 1]);
    assert.ok(Number.isFinite(evaluated.loss), `loss ${evaluated.loss}`);
    assert.deepEqual(native.counters().convolutions, { ...zero, onednnBf16: 13 });
    // fc7 and fc6 trainable, every convolution frozen.
    await native.configureTraining({ trainableBackboneLayers: 2 });
    const frozen = await native.trainStep([clip, other], [0, 1]);
    assert.ok(Number.isFinite(frozen.loss) && frozen.stepped, `loss ${frozen.loss}`);
    assert.deepEqual(native.counters().convolutions, { ...zero, onednnBf16: 26 });
    // conv5_3 trainable too: its gradient needs autograd, so the convolutions go through autocast.
    await native.configureTraining({ trainableBackboneLayers: 3 });
    const trained = await native.trainStep([clip, other], [0, 1]);
    assert.ok(Number.isFinite(trained.loss) && trained.stepped, `loss ${trained.loss}`);
    assert.deepEqual(native.counters().convolutions, { ...zero, onednnBf16: 26, dense: 13 });
  } finally {
    native.dispose();
  }
});

// A child process, so that VIDEO_RNN_TUNING is read afresh: its model's convolution counts.
const child = `
  import { VideoRNN } from './dist/index.js';
  const model = await VideoRNN.create(${JSON.stringify(options)});
  const clip = JSON.parse(process.argv[1]);
  await model.embed({ ...clip, data: Uint8Array.from(clip.data) });
  process.stdout.write(JSON.stringify(model.stats.convolutions));
  model.dispose();
`;
async function childCounts(tuning) {
  const argument = JSON.stringify({ ...clip, data: Array.from(clip.data) });
  const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', child, argument],
    { env: { ...process.env, VIDEO_RNN_TUNING: tuning }, maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

test("VIDEO_RNN_TUNING=bf16Prepacked=0 puts precision 'bf16' back on autocast's dense path", { skip }, async () => {
  assert.deepEqual(await childCounts('bf16Prepacked=0'), { ...zero, dense: 13 });
});

test("on a CPU without native bf16, precision 'bf16' stays on autocast's dense path", {
  skip: nativeBf16 ? `this CPU has native bf16 (${features.join(', ')}): the prepacked path runs here instead (tests above)` : false,
}, async () => {
  assert.deepEqual(await childCounts(''), { ...zero, dense: 13 });
});
