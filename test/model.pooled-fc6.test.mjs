// fc6 folded with the adaptive 7x7 average pool where VGG16's last map is under 7x7 (native/pooled_fc6.h):
// fc7 as with the pool, at every map size the fold applies to, square or not, in fp32 and bf16; the
// engine's count says when it ran; it never runs while fc6 trains, and follows fc6's weights after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

const run = promisify(execFile);

/** A non-square clip of `frames` frames, height x width, from makeClip's bytes. */
function clipOf(frames, height, width, seed) {
  const square = makeClip(frames, Math.max(height, width), seed);
  return { data: square.data.subarray(0, frames * height * width * 3), frames, height, width };
}

async function fc7(options, clip) {
  const native = await addon().createModel({ classes: 2, hiddenSize: 8, seed: 5, threads: 2, ...options });
  try {
    const [rows] = await native.embed([clip]);
    return { rows, folded: native.counters().pooledFc6 };
  } finally {
    native.dispose();
  }
}

function assertClose(actual, expected, relative, what) {
  const largest = Math.max(...expected.map(Math.abs));
  assert.ok(largest > 1e-4, `${what}: fc7 is not all zeros`);
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= relative * largest, `${what}: fc7 differs by ${diff.toExponential(2)}, ${(diff / largest).toExponential(2)} of the largest value`);
  return diff;
}

// Maps of 1x1 (32 px), 2x2 (64 px), 3x3 (112 px), 1x2 (48 x 80 px), and 7x7 (224 px), where pool and fc6 stay as they are.
const sizes = [[32, 32], [64, 64], [112, 112], [48, 80], [224, 224]];

for (const [height, width] of sizes) {
  const applies = Math.floor(height / 32) * Math.floor(width / 32) < 49;
  test(`fp32, ${height}x${width} frames: fc7 ${applies ? 'with fc6 folded equals fc7 through the pool to 1e-5' : 'through the pool, nothing folded'}`, async () => {
    const clip = clipOf(2, height, width, height + width);
    const pooled = await fc7({ pooledFc6: false }, clip);
    const folded = await fc7({}, clip);
    assert.equal(pooled.folded, 0, 'switched off, fc6 is never folded');
    assert.equal(folded.folded, applies ? 1 : 0, 'one forward, folded where the map is under 7x7');
    const diff = assertClose(folded.rows, pooled.rows, 1e-5, `${height}x${width}`);
    if (!applies) assert.equal(diff, 0, 'at 7x7 the same computation runs');
  });
}

test('bf16 (autocast, or prepacked where the CPU has native bf16): fc7 with fc6 folded agrees with the pooled path', async () => {
  const clip = clipOf(3, 64, 96, 4);
  const pooled = await fc7({ pooledFc6: false, precision: 'bf16', bf16PrepackedConvolutions: true }, clip);
  const folded = await fc7({ precision: 'bf16', bf16PrepackedConvolutions: true }, clip);
  assert.equal(folded.folded, 1);
  // bf16 keeps 8 bits of mantissa: fc6's inputs and weights round differently folded and pooled.
  assertClose(folded.rows, pooled.rows, 2e-2, 'bf16 64x96');
});

// A child process, so that VIDEO_RNN_TUNING is read afresh: fc7 before and after fine-tuning fc6 and fc7.
const child = `
  import { VideoRNN } from './dist/index.js';
  import { makeClip } from './test/helpers/clips.mjs';
  const [clip, other] = [makeClip(2, 64, 11), makeClip(2, 64, 12)];
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 64, seed: 3, threads: 2, dropout: 0 });
  const [before] = await model.embed(clip);
  const data = { classes: ['a', 'b'], size: 2, sample: (i) => ({ id: String(i), label: i, source: i === 0 ? clip : other }) };
  await model.fineTune(data, { trainableBackboneLayers: 2, epochs: 2, batchSize: 2, learningRate: 0.05, backboneLearningRate: 0.05 });
  const [after] = await model.embed(clip);
  process.stdout.write(JSON.stringify({ before: Array.from(before), after: Array.from(after) }));
  model.dispose();
`;

test('fine-tuning fc6 runs it unfolded, and the fold follows the new weights', async () => {
  const [pooled, folded] = await Promise.all(['pooledFc6=0', ''].map(async (tuning) => JSON.parse((await run(process.execPath,
    ['--no-warnings', '--input-type=module', '-e', child],
    { env: { ...process.env, VIDEO_RNN_TUNING: tuning }, maxBuffer: 1 << 26 })).stdout)));
  assertClose(folded.before, pooled.before, 1e-5, 'before');
  assert.ok(maxAbsDiff(pooled.after, pooled.before) > 1e-3, 'fine-tuning changed fc7');
  // A fold of the old weights would give fc7 as before; training itself ran the same way on both sides.
  assertClose(folded.after, pooled.after, 1e-4, 'after fine-tuning');
});
