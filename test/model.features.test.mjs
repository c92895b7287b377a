// The model over the on-disk feature store: a new model trains, evaluates, predicts and embeds from
// stored rows without the CNN and gets what the memory cache gives, bit for bit; entries of another
// backbone, a changed video or a corrupt entry are never used. (extract and training over a store
// larger than memory: features.extract.test.mjs.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { tempDir } from './helpers/clips.mjs';
import { counted, counters, featureClips, same, warningsDuring, withNewModel } from './helpers/features-model.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const classes = ['left', 'right'];
const options = { classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 5 };
const trainOptions = { epochs: 2, batchSize: 2, seed: 1 };
let data;
let files;
let framesTotal;
let reference; // a model with no store: its training, and the rows its CNN computes
let referenceRows;
let trained; // its training report
let plain; // a fresh model's predictions and evaluation, with no store

const store = (name) => path.join(dir, name);
const withModel = (extra, work) => withNewModel({ ...options, ...extra }, work);

before(async () => {
  ({ data, files, framesTotal } = await featureClips(path.join(dir, 'videos'), classes));
  reference = await VideoRNN.create(options);
  referenceRows = await reference.embed(files);
  plain = { predictions: await reference.predict(files), evaluation: await reference.evaluate(data) };
  reference.clearCache();
  trained = await reference.train(data, trainOptions);
});
after(() => reference?.dispose());

test('a new model trains from the store with no CNN and gets what the memory cache gives; stored rows are the computed rows, bit for bit', async () => {
  const folder = store('fp32');
  const cold = await withModel({ featureStore: folder }, async (model) => ({ report: await model.train(data, trainOptions), counts: counters(model) }));
  assert.deepEqual(cold.counts, { framesEmbedded: framesTotal, videosDecoded: data.size, hits: 0, misses: data.size, writes: data.size });
  assert.deepEqual(cold.report.epochs.map((epoch) => [epoch.loss, epoch.accuracy]),
    trained.epochs.map((epoch) => [epoch.loss, epoch.accuracy]), 'a cold store run trains as the memory cache does');
  const warm = await withModel({ featureStore: folder }, async (model) => ({ report: await model.train(data, trainOptions), counts: counters(model),
    rows: await model.embed(files), after: counters(model) }));
  assert.deepEqual(warm.counts, { framesEmbedded: 0, videosDecoded: 0, hits: data.size, misses: 0, writes: 0 });
  assert.deepEqual(warm.report.epochs.map((epoch) => [epoch.loss, epoch.accuracy]),
    trained.epochs.map((epoch) => [epoch.loss, epoch.accuracy]), 'the warm run has the same losses and accuracies');
  assert.equal(warm.after.framesEmbedded, 0, 'embed read the store');
  warm.rows.forEach((rows, index) => assert.ok(same(rows, referenceRows[index]), `${files[index]}: stored rows equal computed rows bit for bit`));
});

test('predict, evaluate and embed read the store (and a per-call featureStore overrides the model\'s)', async () => {
  const folder = store('calls');
  await withModel({}, (model) => model.embed(files, { featureStore: folder }));
  await withModel({ featureStore: store('unused') }, async (model) => {
    const predictions = await model.predict(files, { featureStore: folder });
    const evaluation = await model.evaluate(data, { featureStore: folder });
    assert.deepEqual(counters(model), { framesEmbedded: 0, videosDecoded: 0, hits: 2 * data.size, misses: 0, writes: 0 });
    assert.deepEqual(predictions, plain.predictions);
    assert.equal(evaluation.loss, plain.evaluation.loss);
  });
  assert.equal(fs.existsSync(store('unused')) && fs.readdirSync(store('unused')).some((name) => name.endsWith('.feat')), false);
});

test('bf16 storage halves the bytes and stays within 1% of float32', async () => {
  const folder = { path: store('bf16'), dtype: 'bf16' };
  const filled = await counted(reference, () => reference.embed(files, { featureStore: folder }));
  assert.equal(filled.counts.writes, data.size);
  const entryBytes = fs.readdirSync(folder.path, { recursive: true }).filter((name) => name.endsWith('.feat'))
    .reduce((sum, name) => sum + fs.statSync(path.join(folder.path, name)).size, 0);
  assert.ok(entryBytes < framesTotal * 4096 * 2 * 1.1, `${entryBytes} bytes for ${framesTotal} rows of 4096: about 2 bytes a value`);
  await withModel({ featureStore: folder }, async (model) => {
    const report = await model.train(data, trainOptions);
    const rows = await model.embed(files);
    assert.equal(counters(model).framesEmbedded, 0);
    let worst = 0;
    let differs = false;
    rows.forEach((row, index) => {
      const exact = referenceRows[index];
      let scale = 0;
      for (const value of exact) scale = Math.max(scale, Math.abs(value));
      for (let i = 0; i < row.length; i += 1) worst = Math.max(worst, Math.abs(row[i] - exact[i]) / scale);
      differs ||= !same(row, exact);
    });
    assert.ok(differs, 'bf16 entries are not float32 ones');
    assert.ok(worst < 0.01, `bf16 rows within 1% of float32 (max relative difference ${worst})`);
    const lossGap = Math.abs(report.loss - trained.loss) / trained.loss;
    console.log(`# bf16 entries: rows within ${(worst * 100).toFixed(3)}% of float32 (of each clip's largest value); final loss ${report.loss} vs ${trained.loss}`);
    assert.ok(lossGap < 0.01, `final loss within 1% (${report.loss} vs ${trained.loss})`);
  });
});

test('an entry made by another backbone is never used: another seed misses and recomputes', async () => {
  const folder = store('seed-5');
  await reference.embed(files, { featureStore: folder });
  await withModel({ seed: 6, featureStore: folder }, async (model) => {
    const evaluation = await model.evaluate(data);
    assert.deepEqual(counters(model), { framesEmbedded: framesTotal, videosDecoded: data.size, hits: 0, misses: data.size, writes: data.size });
    model.clearCache();
    const again = await counted(model, () => model.evaluate(data));
    assert.deepEqual([again.counts.hits, again.counts.framesEmbedded], [data.size, 0], 'its own entries are there now');
    assert.equal(again.result.loss, evaluation.loss, 'and give its own result');
    assert.notEqual(evaluation.loss, plain.evaluation.loss, 'which differs from the other backbone\'s');
  });
});

test('a changed video is recomputed; a corrupt entry is recomputed with a warning and the result is right', async () => {
  const folder = store('changes');
  const copies = path.join(dir, 'copies');
  fs.cpSync(path.join(dir, 'videos'), copies, { recursive: true });
  const copy = await makeSyntheticDataset(copies, { classes, perClass: 4, size: 32, minFrames: 2, maxFrames: 4, seed: 3 });
  reference.clearCache();
  await reference.evaluate(copy, { featureStore: folder });
  // One video rewritten with other frames, one entry damaged on disk.
  const changed = copy.sample(0).source;
  const replacement = await makeSyntheticDataset(path.join(dir, 'other'), { classes, perClass: 1, size: 32, minFrames: 4, maxFrames: 4, seed: 9 });
  fs.copyFileSync(replacement.sample(0).source, changed);
  const entries = fs.readdirSync(folder, { recursive: true }).map((name) => path.join(folder, name)).filter((file) => file.endsWith('.feat'));
  assert.equal(entries.length, copy.size);
  const victim = entries[entries.length - 1];
  const bytes = fs.readFileSync(victim);
  bytes[bytes.length - 100] ^= 0xff;
  fs.writeFileSync(victim, bytes);
  reference.clearCache();
  const expected = await reference.evaluate(copy);
  reference.clearCache();
  const { result: { result, warnings }, counts } = await counted(reference, () => warningsDuring(() => reference.evaluate(copy, { featureStore: folder })));
  assert.equal(counts.misses, 2, 'the changed video and the corrupt entry miss');
  assert.equal(counts.hits, copy.size - 2);
  assert.equal(counts.writes, 2);
  assert.ok(warnings.some((warning) => /unusable|corrupt|checksum/i.test(warning.message)), `a warning names the bad entry: ${warnings.map(String)}`);
  assert.equal(result.loss, expected.loss, 'the result is that of computed rows');
});

test('fine-tuning with unfrozen layers ignores the store, with a warning', async () => {
  const folder = store('fp32');
  await withModel({ featureStore: folder }, async (model) => {
    const { warnings } = await warningsDuring(() => model.fineTune(data, { trainableBackboneLayers: 1, epochs: 1, batchSize: 4 }));
    assert.ok(warnings.some((warning) => warning.code === 'VIDEO_RNN_FEATURE_STORE_IGNORED'), 'the store is said to be ignored');
    const counts = counters(model);
    assert.equal(counts.hits + counts.misses, 0, 'the store was not read');
    assert.equal(counts.framesEmbedded, framesTotal, 'every frame went through the CNN');
  });
});

test('bad featureStore options are refused', async () => {
  await assert.rejects(VideoRNN.create({ ...options, featureStore: 42 }), { code: 'E_INVALID_ARGUMENT' });
  const model = reference;
  await assert.rejects(model.train(data, { featureStore: { path: '' } }), { code: 'E_INVALID_ARGUMENT' });
  await assert.rejects(model.evaluate(data, { featureStore: { path: store('x'), dtype: 'int8' } }), { code: 'E_INVALID_ARGUMENT' });
  await assert.rejects(model.extract(data, { featureStore: { path: store('x'), maxBytes: -1 } }), { code: 'E_INVALID_ARGUMENT' });
  await assert.rejects(model.predict(files, { featureStore: ['a'] }), { code: 'E_INVALID_ARGUMENT' });
  await assert.rejects(model.extract(data), { code: 'E_INVALID_ARGUMENT' }, 'extract needs a store');
});
