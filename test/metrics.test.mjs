// evaluate()'s numbers, checked against a direct count over the same predictions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsAccumulator, topIndices } from '../dist/metrics.js';
import { VideoRNN } from '../dist/index.js';
import { makeClip, memoryDataset } from './helpers/clips.mjs';

function randomRows(count, classes, seed) {
  let state = seed;
  const next = () => { state = (Math.imul(state, 1103515245) + 12345) >>> 0; return state / 4294967296; };
  const labels = Array.from({ length: count }, () => Math.floor(next() * classes));
  const probabilities = new Float32Array(count * classes).map(() => next());
  return { labels, probabilities };
}

test('accuracy, top-5, mean class accuracy, confusion and per-class accuracy match a direct count', () => {
  const classes = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const metrics = new MetricsAccumulator(classes);
  const batches = [randomRows(13, 7, 1), randomRows(9, 7, 2)];
  const losses = [0.7, 1.9];
  batches.forEach((batch, index) => metrics.add(batch.probabilities, batch.labels, losses[index]));
  const report = metrics.report();

  const rows = batches.flatMap((batch) => batch.labels.map((label, row) =>
    ({ label, scores: Array.from(batch.probabilities.subarray(row * 7, row * 7 + 7)) })));
  const argmax = (scores) => scores.indexOf(Math.max(...scores));
  assert.equal(report.count, 22);
  assert.equal(report.loss, (0.7 * 13 + 1.9 * 9) / 22);
  assert.equal(report.accuracy, rows.filter((row) => argmax(row.scores) === row.label).length / 22);
  const inTop5 = (row) => [...row.scores].sort((x, y) => y - x).slice(0, 5).includes(row.scores[row.label]);
  assert.equal(report.top5, rows.filter(inTop5).length / 22);
  classes.forEach((label, index) => {
    const mine = rows.filter((row) => row.label === index);
    assert.equal(report.perClass[label].count, mine.length);
    assert.deepEqual(report.confusion[index], classes.map((_, predicted) => mine.filter((row) => argmax(row.scores) === predicted).length));
    if (mine.length) assert.equal(report.perClass[label].accuracy, mine.filter((row) => argmax(row.scores) === index).length / mine.length);
  });
  const present = classes.filter((label) => report.perClass[label].count > 0);
  const mean = present.reduce((sum, label) => sum + report.perClass[label].accuracy, 0) / present.length;
  assert.ok(Math.abs(report.meanClassAccuracy - mean) < 1e-12);
});

test('top-5 is reported only with more than 5 classes; summed state vectors merge like one pass', () => {
  const few = new MetricsAccumulator(['a', 'b', 'c']);
  const { labels, probabilities } = randomRows(10, 3, 3);
  few.add(probabilities, labels, 1);
  assert.equal(few.report().top5, undefined);
  const halves = [new MetricsAccumulator(['a', 'b', 'c']), new MetricsAccumulator(['a', 'b', 'c'])];
  halves[0].add(probabilities.subarray(0, 15), labels.slice(0, 5), 1);
  halves[1].add(probabilities.subarray(15), labels.slice(5), 1);
  const merged = new MetricsAccumulator(['a', 'b', 'c']);
  merged.loadVector(halves[0].toVector().map((value, index) => value + halves[1].toVector()[index]));
  assert.deepEqual(merged.report(), few.report());
  assert.deepEqual(topIndices([0.1, 0.5, 0.5, 0.2], 3), [1, 2, 3]);
});

test('evaluate reports progress per batch, and its last event carries the final loss and accuracy', async () => {
  const classes = ['a', 'b', 'c'];
  const data = memoryDataset(classes, Array.from({ length: 7 }, (_, index) => ({ clip: makeClip(2 + (index % 3), 32, 40 + index), label: index % 3 })));
  const model = await VideoRNN.create({ classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 4 });
  try {
    const events = [];
    const report = await model.evaluate(data, { batchSize: 3, onProgress: (event) => events.push(event) });
    assert.deepEqual(events.map((event) => [event.phase, event.batch, event.batches]), [['evaluate', 1, 3], ['evaluate', 2, 3], ['evaluate', 3, 3]]);
    assert.equal(events.at(-1).accuracy, report.accuracy);
    assert.ok(Math.abs(events.at(-1).loss - report.loss) < 1e-12);
    await assert.rejects(model.evaluate(data, { onProgress: 'yes' }), { code: 'E_INVALID_ARGUMENT' });
  } finally {
    model.dispose();
  }
});
