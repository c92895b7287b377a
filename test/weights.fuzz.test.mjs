import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzWeights } from '../bench/fuzz-weights.mjs';

// The quick run; bench/fuzz-weights.mjs runs 10,000 cases the same way.
test('mutated, truncated and hostile weights files end in coded errors, never anything else', { timeout: 120_000 }, async () => {
  const result = await fuzzWeights({ cases: 400, seed: 20240611 });
  assert.deepEqual(result.failures, [], 'no case threw anything but E_WEIGHTS_FORMAT / E_WEIGHTS_SHAPE');
  assert.equal(result.counts.unexpected, 0);
  assert.equal(result.executed, false, 'no pickle payload ran');
  assert.equal(Object.values(result.counts).reduce((a, b) => a + b, 0), 400);
  // The run exercised what it claims to: every hostile kind and mutation, both error codes, and
  // mutations that still parse (so the readers' success paths were fuzzed too).
  for (const strategy of ['truncate', 'flip', 'interesting', 'splice', 'header', 'huge header length', 'safetensors overlap',
    'deep pickle nesting', 'foreign global', 'huge declared length', 'view past its storage', 'storage size mismatch',
    'many views of one storage', 'zip records out of range', 'legacy count mismatch']) {
    assert.ok(result.byStrategy[strategy], `strategy ${strategy} ran`);
  }
  assert.ok(result.counts.E_WEIGHTS_FORMAT > 0 && result.counts.E_WEIGHTS_SHAPE > 0 && result.counts.ok > 0);
  assert.ok(result.slowestCaseMs < 5_000, `slowest case took ${result.slowestCaseMs} ms`);
});
