// split(): stratified, deterministic, independent of the order a dataset lists its samples in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { split, SubsetDataset } from '../dist/data/index.js';
import { throwsWithCode } from './helpers/media.mjs';

/** Any object with classes, size and sample() is a Dataset; this one lists (id, label) pairs. */
function listDataset(classes, pairs) {
  return {
    classes,
    size: pairs.length,
    sample: (index) => ({ id: pairs[index][0], label: pairs[index][1], source: `/videos/${pairs[index][0]}` }),
  };
}

function ids(subset) {
  return Array.from({ length: subset.size }, (_, index) => subset.sample(index).id);
}

function labelCounts(subset, classCount) {
  const counts = new Array(classCount).fill(0);
  for (let index = 0; index < subset.size; index += 1) counts[subset.sample(index).label] += 1;
  return counts;
}

const pairs = [
  ...Array.from({ length: 10 }, (_, index) => [`walk/${index}.mp4`, 0]),
  ...Array.from({ length: 6 }, (_, index) => [`run/${index}.mp4`, 1]),
  ['jump/0.mp4', 2],
];
const dataset = listDataset(['walk', 'run', 'jump'], pairs);

test('each class gives its share to validation; singletons stay in training', () => {
  const { train, validation } = split(dataset, 0.2, 7);
  assert.ok(train instanceof SubsetDataset);
  assert.deepEqual(labelCounts(validation, 3), [2, 1, 0]);
  assert.deepEqual(labelCounts(train, 3), [8, 5, 1]);
  assert.deepEqual(train.classes, dataset.classes);
  const all = [...ids(train), ...ids(validation)].sort();
  assert.deepEqual(all, pairs.map(([id]) => id).sort(), 'the two parts cover every sample exactly once');
  assert.deepEqual([...train.indices], [...train.indices].sort((a, b) => a - b), 'subsets keep dataset order');
});

test('the total validation size is round(size x fraction), spread by largest remainder', () => {
  // 17 x 0.5 rounds to 9: the floors give 5 + 3 + 0, and the spare one cannot go to the singleton class
  // (it keeps its only sample for training), so it goes to the next class in order.
  const { validation } = split(dataset, 0.5, 1);
  assert.equal(validation.size, 9);
  assert.deepEqual(labelCounts(validation, 3), [6, 3, 0]);
  // 1.7 rounds to 2: walk's floor gives 1, and the spare goes to run, whose remainder (0.6) is largest.
  const { validation: small } = split(dataset, 0.1, 1);
  assert.equal(small.size, 2);
  assert.deepEqual(labelCounts(small, 3), [1, 1, 0]);
});

test('the same seed gives the same split; other seeds give others', () => {
  const first = ids(split(dataset, 0.3, 42).validation);
  assert.deepEqual(ids(split(dataset, 0.3, 42).validation), first);
  const others = [1, 2, 3, 4, 5].map((seed) => ids(split(dataset, 0.3, seed).validation).join());
  assert.ok(others.some((other) => other !== first.join()), 'some other seed changes the split');
  assert.deepEqual(ids(split(dataset, 0.3).validation), ids(split(dataset, 0.3, 0).validation), 'seed defaults to 0');
});

test('the split follows the ids, not the order the dataset lists them in', () => {
  const reversed = listDataset(dataset.classes, [...pairs].reverse());
  assert.deepEqual(ids(split(reversed, 0.3, 9).validation).sort(), ids(split(dataset, 0.3, 9).validation).sort());
});

test('bad arguments are E_INVALID_ARGUMENT', () => {
  for (const fraction of [0, 1, -0.1, 1.5, Number.NaN, '0.2', undefined]) {
    throwsWithCode(() => split(dataset, fraction, 1), 'E_INVALID_ARGUMENT');
  }
  throwsWithCode(() => split(dataset, 0.2, -1), 'E_INVALID_ARGUMENT');
  throwsWithCode(() => split(dataset, 0.2, 1.5), 'E_INVALID_ARGUMENT');
  throwsWithCode(() => split({ size: 3 }, 0.2, 1), 'E_INVALID_ARGUMENT');
  throwsWithCode(() => split(listDataset(['a'], [['x', 1]]), 0.2, 1), 'E_INVALID_ARGUMENT');
  const { validation } = split(dataset, 0.2, 7);
  throwsWithCode(() => validation.sample(validation.size), 'E_INVALID_ARGUMENT');
});
