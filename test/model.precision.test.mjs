// bf16 autocast against fp32, with the fc6/fc7 GEMMs split across 1 and 2 intra-op threads:
// autocast is thread-local, so the split threads must compute in the dtype autocast chose.
// Embedding-cache entries are float32 whatever the precision (docs/design.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VideoRNN } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, maxAbsDiff } from './helpers/clips.mjs';

const clips = [makeClip(4, 32, 11), makeClip(2, 32, 12)];
// bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.002 per operation); over VGG16's 15
// layers the fc7 error stays within a few percent of the largest value. A wrong dtype in any split
// chunk is caught by the bit test below.
const tolerance = 0.05;

async function fc7(options) {
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, frameSize: 32, seed: 5, ...options });
  try {
    return await model.embed(clips);
  } finally {
    model.dispose();
  }
}

const relative = (a, b) => maxAbsDiff(a, b) / Math.max(...b.map(Math.abs));

for (const threads of [1, 2]) {
  test(`cpu, ${threads} thread(s): bf16 fc7 is within ${tolerance} (relative to the largest value) of fp32`, async () => {
    const full = await fc7({ device: 'cpu', precision: 'fp32', threads });
    const half = await fc7({ device: 'cpu', precision: 'bf16', threads });
    full.forEach((reference, index) => {
      assert.ok(Math.max(...reference.map(Math.abs)) > 1e-3, 'the fp32 embedding is not all zeros');
      const error = relative(half[index], reference);
      assert.ok(error < tolerance, `clip ${index}: relative error ${error}`);
      // bf16 really ran: fp32 itself would match to float rounding (below 1e-5).
      assert.ok(error > 1e-4, `clip ${index}: relative error ${error} is fp32's`);
    });
  });
}

// A bf16 number is a float32 whose low 16 bits are zero. fc7 is the output of the split fc7 GEMM
// (then ReLU and an eval-mode Dropout, which keep values as they are): if any chunk ran in fp32,
// its columns would come back with low bits set.
const lowBitsSet = (values) => new Uint32Array(values.buffer, values.byteOffset, values.length).filter((bits) => (bits & 0xffff) !== 0).length;

for (const threads of [1, 2]) {
  test(`cpu bf16, ${threads} thread(s): every fc7 value is a bf16 value (each fc6/fc7 chunk ran in bf16)`, async () => {
    const half = await fc7({ device: 'cpu', precision: 'bf16', threads });
    const full = await fc7({ device: 'cpu', precision: 'fp32', threads });
    half.forEach((values, index) => {
      assert.equal(lowBitsSet(values), 0, `clip ${index}: ${lowBitsSet(values)} of ${values.length} values are not bf16`);
      // The check can fail: fp32 values have low bits set almost everywhere they are not 0.
      const nonZero = full[index].filter((value) => value !== 0).length;
      assert.ok(lowBitsSet(full[index]) > nonZero * 0.9, `fp32 clip ${index}: ${lowBitsSet(full[index])} of ${nonZero}`);
    });
  });
}

// CUDA's bf16 against its fp32 is in test/gpu/cuda.test.mjs, which bench/gpu.sh runs on a GPU machine.

// The cache is compared exactly, not within a tolerance: it must hand the LSTM the very numbers the
// CNN computed. A batch that mixes cached and computed clips converts every clip's rows to float32
// before packing (native/engine.cpp), so with the same clips in the same order the LSTM and head run
// the same kernels on the cached path and on the computed one, and any difference in a cached
// embedding that reaches the output shows up. (A batch computed entirely feeds the LSTM the CNN's
// bf16 output directly: that path is compared to bf16's tolerance in the tests above.) Under bf16 the
// head's logits are bf16 too, so the output resolves the embeddings coarsely (a one-byte change of
// the input moves a probability by 2^-14 here); fp32 runs the same check at full resolution.
for (const precision of ['bf16', 'fp32']) {
  test(`${precision}: the embedding cache stores float32 (4 bytes per value), and a cached clip feeds the LSTM exactly what the CNN computes for it`, async () => {
    const native = await addon().createModel({ classes: 2, hiddenSize: 8, precision, device: 'cpu', threads: 2, seed: 3 });
    try {
      const [first, second] = clips;
      // Each clip stored from a CNN run of its own frames alone, as it is computed again below: in bf16,
      // oneDNN's kernels may round a few fc7 values differently for another number of rows in the
      // batch (docs/features.md), so equal inputs mean equal batch compositions.
      await native.predict([{ ...first, cacheKey: 'first', store: true }]);
      await native.predict([{ ...second, cacheKey: 'second', store: true }]);
      const counters = native.counters();
      assert.equal(counters.cacheEntries, 2);
      assert.equal(counters.cacheBytes, (first.frames + second.frames) * 4096 * 4);
      const cached = (await native.predict([{ cacheKey: 'first' }, { cacheKey: 'second' }])).probabilities;
      assert.equal(native.counters().cacheHits, 2);
      assert.equal(native.counters().framesEmbedded, first.frames + second.frames, 'the cached call ran the CNN again');
      // Each clip computed again (not stored) beside the other one's cache entry: bit for bit the same.
      const firstComputed = (await native.predict([{ ...first }, { cacheKey: 'second' }])).probabilities;
      const secondComputed = (await native.predict([{ cacheKey: 'first' }, { ...second }])).probabilities;
      assert.equal(native.counters().framesEmbedded, 2 * (first.frames + second.frames), 'each clip was computed once more');
      assert.deepEqual(Array.from(firstComputed), Array.from(cached), 'the first clip, computed against cached');
      assert.deepEqual(Array.from(secondComputed), Array.from(cached), 'the second clip, computed against cached');
      // The comparison can fail: one byte of one frame changed changes the output.
      const changed = { ...first, data: first.data.map((value, index) => (index === 0 ? value ^ 0x80 : value)) };
      const fromChanged = (await native.predict([changed, { cacheKey: 'second' }])).probabilities;
      assert.ok(maxAbsDiff(fromChanged, cached) > 0, 'a one-byte change of the input is visible in the output');
    } finally {
      native.dispose();
    }
  });
}
