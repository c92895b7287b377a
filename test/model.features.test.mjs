// The model over the on-disk feature store: a new model trains, evaluates, predicts and embeds from
// stored rows without the CNN and gets what the memory cache gives, bit for bit; entries of another
// backbone, a changed video or a corrupt entry are never used; extract fills the store once, resumes
// after kill -9, and training over a large store keeps RAM bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { freePort } from '../dist/free-port.js';
import { tempDir } from './helpers/clips.mjs';

const here = fileURLToPath(import.meta.url);
const worker = path.join(path.dirname(here), 'helpers', 'features-worker.mjs');
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
const bits = (rows) => Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
const same = (a, b) => a.length === b.length && bits(a).equals(bits(b));

async function withModel(extra, work) {
  const model = await VideoRNN.create({ ...options, ...extra });
  try {
    return await work(model);
  } finally {
    model.dispose();
  }
}

function counters(model) {
  const { framesEmbedded, videosDecoded, featureStoreHits, featureStoreMisses, featureStoreWrites } = model.stats;
  return { framesEmbedded, videosDecoded, hits: featureStoreHits, misses: featureStoreMisses, writes: featureStoreWrites };
}

/** What `work` made the model do (counters before and after). */
async function counted(model, work) {
  const start = counters(model);
  const result = await work();
  const end = counters(model);
  return { result, counts: Object.fromEntries(Object.entries(end).map(([name, value]) => [name, value - start[name]])) };
}

/** Collects the process warnings `work` emits. */
async function warningsDuring(work) {
  const seen = [];
  const listener = (warning) => seen.push(warning);
  process.on('warning', listener);
  try {
    const result = await work();
    await new Promise((resolve) => setImmediate(resolve));
    return { result, warnings: seen };
  } finally {
    process.off('warning', listener);
  }
}

function runWorker(args, onLine, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      for (const line of String(chunk).split('\n')) if (line) onLine?.(line, child);
    });
    child.stderr.on('data', (chunk) => { err += chunk; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

before(async () => {
  data = await makeSyntheticDataset(path.join(dir, 'videos'), { classes, perClass: 4, size: 32, minFrames: 2, maxFrames: 4, seed: 3 });
  files = Array.from({ length: data.size }, (_, index) => data.sample(index).source);
  framesTotal = data.clips.reduce((sum, clip) => sum + clip.frames, 0);
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

test('extract fills the store once, reports failed clips and goes on; a second run computes nothing', async () => {
  const folder = store('extract');
  const broken = path.join(dir, 'broken.mp4');
  fs.writeFileSync(broken, 'not a video');
  const withBroken = { classes, size: data.size + 1, sample: (index) => (index < data.size ? data.sample(index) : { id: 'broken', label: 0, source: broken }) };
  const events = [];
  await withModel({}, async (model) => {
    const first = await model.extract(withBroken, { featureStore: folder, batchSize: 3, onProgress: (event) => events.push(event) });
    assert.deepEqual([first.clips, first.computed, first.present], [data.size + 1, data.size, 0]);
    assert.deepEqual(first.failed.map((item) => [item.id, item.code]), [['broken', 'E_VIDEO_DECODE']]);
    assert.ok(first.clipsPerSecond > 0 && first.seconds > 0);
  });
  assert.ok(events.length >= 3 && events.every((event) => event.phase === 'extract' && event.samplesPerSecond > 0 && event.eta >= 0));
  assert.equal(events.at(-1).eta, 0);
  const second = await withModel({}, (model) => counted(model, () => model.extract(data, { featureStore: folder })));
  assert.deepEqual([second.result.computed, second.result.present, second.result.failed.length], [0, data.size, 0]);
  assert.equal(second.counts.framesEmbedded, 0, 'nothing went through the CNN again');
});

test('two extractors at once compute each entry once', async () => {
  const folder = store('together');
  await withModel({}, async (model) => {
    const [a, b] = await Promise.all([counted(model, () => model.extract(data, { featureStore: folder, batchSize: 2 })),
      counted(reference, () => reference.extract(data, { featureStore: folder, batchSize: 2 }))]);
    assert.equal(a.result.computed + b.result.computed, data.size, `each entry computed once (${a.result.computed} + ${b.result.computed})`);
    assert.deepEqual([a.result.computed + a.result.present, b.result.computed + b.result.present], [data.size, data.size]);
    assert.equal(a.counts.framesEmbedded + b.counts.framesEmbedded, framesTotal, 'every frame went through a CNN once');
  });
});

test('in a group each rank extracts its own shard, and the counts are the group\'s', async () => {
  const folder = store('group');
  const group = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) };
  const ranks = await Promise.all(['0', '1'].map((rank) => runWorker(['extract', path.join(dir, 'videos'), folder], undefined, { ...group, RANK: rank })));
  const reports = ranks.map((rank) => {
    assert.equal(rank.code, 0, rank.err);
    return JSON.parse(rank.out.trim().split('\n').at(-1));
  });
  for (const report of reports) assert.deepEqual([report.clips, report.computed, report.present], [data.size, data.size, 0]);
  assert.ok(reports.every((report) => report.framesEmbedded > 0), 'both ranks computed');
  assert.equal(reports[0].framesEmbedded + reports[1].framesEmbedded, framesTotal, 'disjoint shards: every frame once');
  const read = await counted(reference, () => reference.embed(files, { featureStore: folder }));
  assert.equal(read.counts.framesEmbedded, 0, 'the store is complete');
});

test('extract killed midway, then resumed, computes only the missing entries and ends equal to an uninterrupted run', async () => {
  const folder = store('killed');
  let killed = false;
  const child = await runWorker(['extract', path.join(dir, 'videos'), folder], (line, process) => {
    if (line.startsWith('progress') && !killed) {
      killed = true;
      process.kill('SIGKILL');
    }
  });
  assert.equal(child.signal, 'SIGKILL', `the extractor was killed (${child.err})`);
  await withModel({}, async (model) => {
    const { result: resumed, counts } = await counted(model, () => model.extract(data, { featureStore: folder, batchSize: 2 }));
    assert.ok(resumed.present >= 2 && resumed.computed >= 1, `some entries were there and some were not (${JSON.stringify(resumed)})`);
    assert.equal(resumed.present + resumed.computed, data.size);
    assert.ok(counts.framesEmbedded > 0 && counts.framesEmbedded < framesTotal, `only the missing clips went through the CNN (${counts.framesEmbedded} of ${framesTotal} frames)`);
    assert.equal(counts.writes, resumed.computed);
    const whole = store('uninterrupted');
    await model.extract(data, { featureStore: whole, batchSize: 3 });
    const a = await counted(model, () => model.embed(files, { featureStore: folder }));
    const b = await counted(model, () => model.embed(files, { featureStore: whole }));
    assert.equal(a.counts.framesEmbedded + b.counts.framesEmbedded, 0, 'both stores are complete');
    a.result.forEach((rows, index) => assert.ok(same(rows, b.result[index]), `${files[index]}: the same entry bit for bit`));
  });
});

test('training over a store much larger than the memory cache keeps RAM bounded', async () => {
  const backbone = path.join(dir, 'backbone.safetensors');
  await reference.saveBackbone(backbone);
  const folder = store('large');
  const args = [backbone, folder, '500', '32'];
  const featureBytes = 500 * 32 * 4096 * 4;
  const fill = await runWorker(['fill', ...args]);
  assert.equal(fill.code, 0, fill.err);
  const result = await runWorker(['train', ...args]);
  assert.equal(result.code, 0, result.err);
  const train = JSON.parse(result.out.trim().split('\n').at(-1));
  const growth = (train.hwmKiB - train.beforeKiB) * 1024;
  console.log(`# RSS while training over ${(featureBytes / 2 ** 20).toFixed(0)} MiB of stored features with cacheMB 0: ` +
    `${train.beforeKiB} KiB after the first step, peak ${train.hwmKiB} KiB after it (grew ${(growth / 2 ** 20).toFixed(1)} MiB)`);
  assert.deepEqual([train.framesEmbedded, train.hits, train.misses], [0, 500, 0], 'every clip came from the store');
  assert.ok(growth < featureBytes / 3, `peak RSS grew ${growth} bytes while training over ${featureBytes} bytes of features`);
});
