// extract over the on-disk feature store: it fills the store once and goes on past clips that fail,
// two extractors compute each entry once, ranks of a group take disjoint shards, a run killed midway
// resumes with only the missing entries; and training over a store much larger than the memory
// cache keeps RAM bounded. (These run on the host only: the native calls under them are those of
// model.features.test.mjs, which runs against each LibTorch.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN } from '../dist/index.js';
import { freePort } from '../dist/free-port.js';
import { tempDir } from './helpers/clips.mjs';
import { counted, featureClips, runWorker, same, withNewModel } from './helpers/features-model.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const classes = ['left', 'right'];
const options = { classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 5 };
let data;
let files;
let framesTotal;
let reference; // a second model, for extractors side by side

const store = (name) => path.join(dir, name);
const withModel = (extra, work) => withNewModel({ ...options, ...extra }, work);

before(async () => {
  ({ data, files, framesTotal } = await featureClips(path.join(dir, 'videos'), classes));
  reference = await VideoRNN.create(options);
});
after(() => reference?.dispose());

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
