// `video-rnn extract`, `--features` and `video-rnn features stats|prune` from the command line, on 12
// clips of 2 to 4 frames at 32 px. Every run starts from one backbone file written once. The
// uninterrupted extract (store A, one thread, batches of 2) is the reference the other stores are
// compared with, entry by entry, through the store's own API. Each test may run alone
// (--test-name-pattern): the runs it compares with are made on first use.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FeatureStore, VideoRNN, loadBackbone, makeSyntheticDataset } from '../dist/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { errorLines, parseJson, runCli, startCli } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');
const backbone = path.join(folder, 'vgg16.safetensors');
const clipCount = 12;
// The sampling and frame size every command here uses, so all of them key entries alike.
const sampling = ['--frame-size', '32', '--weights', backbone];
const extractFlags = [...sampling, '--batch-size', '2', '--threads', '1'];
let identity;

before(async () => {
  await makeSyntheticDataset(datasetFolder, { classes: ['left', 'right'], perClass: clipCount / 2, size: 32, minFrames: 2, maxFrames: 4, seed: 21 });
  const random = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize: 8, frameSize: 32, seed: 3 });
  try {
    await random.saveBackbone(backbone);
  } finally {
    random.dispose();
  }
  identity = (await loadBackbone(backbone)).reference.identity;
});

/** The store's own account of itself, read in this process. */
async function storeStats(store) {
  return (await FeatureStore.open(store, () => undefined)).stats();
}

/**
 * Every entry's rows by key, read through the store's API. The keys come from the folder's layout
 * (entries/<2 hex>/<key>.feat, docs/features.md); the rows from `get`, which checks each checksum.
 */
async function storeEntries(store) {
  const opened = await FeatureStore.open(store, () => undefined);
  const entries = new Map();
  for (const shard of fs.readdirSync(path.join(store, 'entries'))) {
    for (const name of fs.readdirSync(path.join(store, 'entries', shard)).filter((file) => file.endsWith('.feat'))) {
      const key = name.slice(0, -'.feat'.length);
      const found = await opened.get(key);
      assert.ok(found, `entry ${key} reads back`);
      entries.set(key, found.data);
    }
  }
  return entries;
}

/** Frames held by entries' rows (fc7 rows are 4096 wide). */
function framesOf(rows) {
  let frames = 0;
  for (const data of rows) frames += data.length / 4096;
  return frames;
}

function extract(store, extra = [], options = {}) {
  return runCli(['extract', datasetFolder, '--features', store, ...extractFlags, '--json', ...extra], { timeoutMs: 120_000, ...options });
}

/** Runs `make` once; every call gives that run. */
function once(make) {
  let result;
  return () => {
    result ??= make();
    return result;
  };
}

const storeA = path.join(folder, 'a');
const referenceRun = once(async () => {
  const result = await extract(storeA);
  assert.equal(result.code, 0, result.stderr);
  return { result, report: parseJson(result), entries: await storeEntries(storeA) };
});

/** Every entry of `store` equals the reference's, bit for bit; `label` names the store in messages. */
async function assertSameEntries(store, label) {
  const reference = (await referenceRun()).entries;
  const entries = await storeEntries(store);
  assert.deepEqual([...entries.keys()].sort(), [...reference.keys()].sort(), `${label}: the same keys as an uninterrupted extract`);
  for (const [key, data] of entries) {
    assert.ok(Buffer.compare(Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      Buffer.from(reference.get(key).buffer, reference.get(key).byteOffset, reference.get(key).byteLength)) === 0,
    `${label}: entry ${key} equals the uninterrupted extract's bit for bit`);
  }
}

test('extract fills the store with one entry per clip and shows progress with clips/s and an ETA', async () => {
  const { result, report } = await referenceRun();
  assert.equal(report.clips, clipCount);
  assert.equal(report.computed, clipCount);
  assert.equal(report.present, 0);
  assert.deepEqual(report.failed, []);
  assert.ok(report.clipsPerSecond > 0);
  assert.equal(report.videosDecoded, clipCount);
  assert.equal(report.framesEmbedded, framesOf((await referenceRun()).entries.values()), 'every stored row went through VGG16 once');
  // Not a terminal: a line per tenth of the work, the last one at 12/12.
  const lines = errorLines(result).filter((line) => line.startsWith('extract '));
  assert.ok(lines.length >= 3, result.stderr);
  assert.match(lines.at(-1), /^extract +12\/12 clips +[\d.]+ clips\/s +ETA [\d.]+ s$/);
  const stats = await storeStats(storeA);
  assert.equal(stats.entries, clipCount);
  assert.deepEqual(Object.keys(stats.backbones), [identity]);
  assert.equal(stats.corrupt, 0);
  assert.equal(stats.claims, 0);
  assert.equal((await referenceRun()).entries.size, clipCount);
});

test('a second extract into the same store computes nothing: every clip is present', async () => {
  await referenceRun();
  const result = await extract(storeA);
  assert.equal(result.code, 0, result.stderr);
  const report = parseJson(result);
  assert.deepEqual([report.computed, report.present, report.failed.length], [0, clipCount, 0]);
  assert.equal(report.videosDecoded, 0, 'no video decoded');
  assert.equal(report.framesEmbedded, 0, 'no frame through VGG16');
  await assertSameEntries(storeA, 'after the second extract');
});

test('extract killed with SIGKILL midway and run again computes only what is missing, and ends equal bit for bit', async () => {
  const store = path.join(folder, 'killed');
  const run = startCli(['extract', datasetFolder, '--features', store, ...extractFlags], { timeoutMs: 120_000 });
  let stderr = '';
  run.child.stderr.on('data', (text) => {
    stderr += text;
    if (/^extract +[4-8]\/12 clips/m.test(stderr)) run.child.kill('SIGKILL');
  });
  const killed = await run.finished;
  assert.equal(killed.signal, 'SIGKILL', `the run was not killed midway: ${killed.stderr}`);
  const left = await storeStats(store);
  assert.ok(left.entries >= 4 && left.entries < clipCount, `${left.entries} entries after the kill`);
  const kept = await storeEntries(store);
  const resumed = await extract(store);
  assert.equal(resumed.code, 0, resumed.stderr);
  const report = parseJson(resumed);
  assert.equal(report.present, left.entries, 'every entry written before the kill is used');
  assert.equal(report.computed, clipCount - left.entries, 'only the missing clips are computed');
  assert.equal(report.videosDecoded, clipCount - left.entries, 'only the missing clips are decoded');
  const missing = [...(await referenceRun()).entries].filter(([key]) => !kept.has(key)).map(([, rows]) => rows);
  assert.equal(report.framesEmbedded, framesOf(missing), 'only the frames of the missing clips go through VGG16');
  const stats = await storeStats(store);
  assert.equal(stats.entries, clipCount);
  assert.equal(stats.corrupt, 0);
  await assertSameEntries(store, 'killed and resumed');
});

test('two extract processes into one store at once: every entry once, none corrupt, each clip computed once', async () => {
  const store = path.join(folder, 'shared');
  const runs = await Promise.all([extract(store), extract(store)]);
  for (const run of runs) assert.equal(run.code, 0, run.stderr);
  const reports = runs.map(parseJson);
  assert.equal(reports[0].computed + reports[1].computed, clipCount, `computed ${reports[0].computed} + ${reports[1].computed}`);
  // The work itself, not only the writes: a clip decoded by both would be wasted even if written once.
  assert.equal(reports[0].videosDecoded + reports[1].videosDecoded, clipCount,
    `decoded ${reports[0].videosDecoded} + ${reports[1].videosDecoded}`);
  assert.equal(reports[0].framesEmbedded + reports[1].framesEmbedded, framesOf((await referenceRun()).entries.values()));
  const stats = await storeStats(store);
  assert.equal(stats.entries, clipCount);
  assert.equal(stats.corrupt, 0);
  assert.equal(stats.claims, 0);
  await assertSameEntries(store, 'two writers');
});

test('extract --nproc 2: two ranks on disjoint shards fill the store once', async () => {
  const store = path.join(folder, 'ranks');
  const result = await runCli(['extract', datasetFolder, '--features', store, ...sampling, '--batch-size', '2', '--nproc', '2', '--json'],
    { timeoutMs: 120_000 });
  assert.equal(result.code, 0, result.stderr);
  const report = parseJson(result);
  assert.equal(report.clips, clipCount);
  assert.equal(report.computed, clipCount);
  assert.equal(report.videosDecoded, clipCount / 2, 'rank 0 decoded its own shard, half the clips');
  const stats = await storeStats(store);
  assert.equal(stats.entries, clipCount);
  assert.equal(stats.corrupt, 0);
  await assertSameEntries(store, '--nproc 2');
});

test('train --features, then train again in a new process: the second reads every clip from the store, same loss; evaluate and predict read it too', async () => {
  const store = path.join(folder, 'train');
  const train = (output) => runCli(['train', datasetFolder, '-o', path.join(folder, output), ...sampling, '--hidden-size', '8', '--head-size', '8',
    '--epochs', '2', '--batch-size', '4', '--seed', '3', '--threads', '1', '--features', store, '--json'], { timeoutMs: 120_000 });
  const first = parseJson(await train('first.safetensors'));
  assert.equal(first.featureStore.misses, clipCount);
  assert.equal(first.featureStore.writes, clipCount);
  assert.ok(first.framesEmbedded > 0);
  const second = parseJson(await train('second.safetensors'));
  assert.equal(second.framesEmbedded, 0, 'no frame went through VGG16');
  assert.equal(second.videosDecoded, 0, 'no video was decoded');
  assert.equal(second.featureStore.hits, clipCount);
  assert.equal(second.featureStore.misses, 0);
  assert.equal(second.training.loss, first.training.loss);
  // What train wrote is what extract writes: one store serves both.
  await assertSameEntries(store, 'written by train');
  // evaluate and predict on the saved model read the same entries.
  const model = path.join(folder, 'second.safetensors');
  const evaluation = parseJson(await runCli(['evaluate', model, datasetFolder, '--features', store, '--json']));
  assert.equal(evaluation.count, clipCount);
  assert.equal(evaluation.framesEmbedded, 0);
  assert.deepEqual(evaluation.featureStore, { path: store, hits: clipCount, misses: 0, writes: 0 });
  const videos = ['left', 'right'].map((label) => path.join(datasetFolder, label, fs.readdirSync(path.join(datasetFolder, label))[0]));
  const predicted = parseJson(await runCli(['predict', model, ...videos, '--features', store, '--json']));
  assert.equal(predicted.predictions.length, 2);
  assert.deepEqual(predicted.featureStore, { path: store, hits: 2, misses: 0, writes: 0 });
});

test('features stats and prune: backbones counted, --dry-run removes nothing, other backbones and missing videos removed', async () => {
  await referenceRun();
  const store = path.join(folder, 'prune');
  fs.cpSync(storeA, store, { recursive: true });
  // Two copies of clips, extracted with another (random, seed 9) backbone.
  const others = path.join(folder, 'others');
  fs.mkdirSync(others);
  const clips = ['left', 'right'].map((label) => {
    const source = fs.readdirSync(path.join(datasetFolder, label))[0];
    fs.copyFileSync(path.join(datasetFolder, label, source), path.join(others, `${label}.mp4`));
    return `${label}.mp4 ${label}`;
  });
  fs.writeFileSync(path.join(others, 'list.txt'), clips.join('\n') + '\n');
  const other = await runCli(['extract', path.join(others, 'list.txt'), '--features', store, '--frame-size', '32', '--seed', '9', '--json']);
  assert.equal(other.code, 0, other.stderr);
  assert.equal(parseJson(other).computed, 2);

  const stats = parseJson(await runCli(['features', 'stats', store, '--json']));
  const otherIdentity = Object.keys(stats.backbones).find((id) => id !== identity);
  assert.match(otherIdentity ?? '', /^[0-9a-f]{64}$/, 'the random backbone has an identity of its own');
  assert.equal(stats.entries, clipCount + 2);
  assert.deepEqual(Object.fromEntries(Object.entries(stats.backbones).map(([id, use]) => [id, use.entries])),
    { [identity]: clipCount, [otherIdentity]: 2 });
  const text = await runCli(['features', 'stats', store]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^entries: +14 \(/m);
  assert.match(text.stdout, new RegExp(`^ +${identity} +12 `, 'm'));

  fs.rmSync(path.join(others, 'left.mp4'));
  const missing = parseJson(await runCli(['features', 'prune', store, '--missing', '--dry-run', '--json']));
  assert.equal(missing.removed, 1);
  assert.equal(missing.reasons.missingSource, 1);
  const dry = parseJson(await runCli(['features', 'prune', store, '--weights', backbone, '--dry-run', '--json']));
  assert.equal(dry.removed, 2);
  assert.equal((await storeStats(store)).entries, clipCount + 2, '--dry-run removed nothing');
  const pruned = await runCli(['features', 'prune', store, '--keep-backbone', identity]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /^removed 2 entries .*; 12 kept\n$/);
  const after = await storeStats(store);
  assert.equal(after.entries, clipCount);
  assert.deepEqual(Object.keys(after.backbones), [identity]);
  await assertSameEntries(store, 'after prune');
});

test('a clip that cannot be decoded: extract exits 1 naming it, the others are stored (in a bf16 store, --features-dtype)', async () => {
  const broken = path.join(folder, 'broken');
  fs.mkdirSync(broken);
  const source = fs.readdirSync(path.join(datasetFolder, 'left'))[0];
  fs.copyFileSync(path.join(datasetFolder, 'left', source), path.join(broken, 'good.mp4'));
  fs.writeFileSync(path.join(broken, 'bad.mp4'), Buffer.alloc(4096, 7));
  fs.writeFileSync(path.join(broken, 'list.txt'), 'good.mp4 left\nbad.mp4 right\n');
  const store = path.join(folder, 'broken-store');
  const result = await runCli(['extract', path.join(broken, 'list.txt'), '--features', store, ...extractFlags, '--features-dtype', 'bf16']);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /^extracted 2 clips into .* \([\d.]+ clips\/s\): 1 computed, 0 already present, 1 failed\n$/);
  assert.match(result.stderr, /^video-rnn: failed: .*bad\.mp4.*: E_VIDEO_DECODE: /m);
  assert.match(result.stderr, /^video-rnn: E_VIDEO_DECODE: 1 of 2 clips could not be extracted/m);
  const stats = await storeStats(store);
  assert.equal(stats.entries, 1);
  assert.equal(stats.dtype, 'bf16', '--features-dtype made a half-size store');
  // good.mp4 has the bytes of a clip in store A (float32), and keys do not depend on the storage type.
  await referenceRun();
  const [key] = (await storeEntries(store)).keys();
  const float32Entry = fs.statSync(path.join(storeA, 'entries', key.slice(0, 2), `${key}.feat`)).size;
  assert.ok(stats.bytes < 0.6 * float32Entry, `bf16 entry ${stats.bytes} bytes, float32 ${float32Entry}`);
});

test('--features-max-gb bounds the store: what does not fit is reported, a later run evicts the least recently used; prune --changed', async () => {
  const store = path.join(folder, 'bounded');
  await referenceRun();
  const entryBytes = fs.statSync(fs.readdirSync(path.join(storeA, 'entries')).map((shard) => path.join(storeA, 'entries', shard))
    .flatMap((shard) => fs.readdirSync(shard).map((name) => path.join(shard, name)))[0]).size;
  // Room for about four of the twelve entries (their sizes differ with the frame count).
  const boundGB = (4.5 * entryBytes) / 2 ** 30;
  const bound = Math.round(boundGB * 2 ** 30);
  const first = await extract(store, ['--features-max-gb', String(boundGB)]);
  assert.equal(first.code, 0, first.stderr);
  const firstReport = parseJson(first);
  assert.ok(firstReport.refused > 0 && firstReport.computed > 0, `computed ${firstReport.computed}, refused ${firstReport.refused}`);
  assert.equal(firstReport.computed + firstReport.refused, clipCount);
  assert.equal(firstReport.failedCount, 0, 'refused entries are not failures');
  assert.match(first.stderr, /full|bound/i, 'the size bound warns');
  const afterFirst = await storeStats(store);
  assert.ok(afterFirst.bytes <= bound, `${afterFirst.bytes} bytes stored, bound ${bound}`);
  assert.equal(afterFirst.entries, firstReport.computed);
  // A new process has its own working set: it may evict the first run's entries to admit its own.
  const second = parseJson(await extract(store, ['--features-max-gb', String(boundGB)]));
  assert.equal(second.present, firstReport.computed);
  assert.ok(second.computed > 0, 'the second run stored entries by evicting the first run\'s');
  const afterSecond = await storeStats(store);
  assert.ok(afterSecond.bytes <= bound, `${afterSecond.bytes} bytes stored, bound ${bound}`);

  // A video rewritten in place: its entry goes with --changed, the others stay.
  const changedStore = path.join(folder, 'changed');
  fs.cpSync(storeA, changedStore, { recursive: true });
  const rewritten = path.join(datasetFolder, 'left', fs.readdirSync(path.join(datasetFolder, 'left')).sort()[0]);
  const original = fs.readFileSync(rewritten);
  try {
    fs.writeFileSync(rewritten, Buffer.concat([original, Buffer.alloc(16)]));
    const pruned = parseJson(await runCli(['features', 'prune', changedStore, '--changed', '--json']));
    assert.equal(pruned.removed, 1);
    assert.equal(pruned.reasons.changedSource, 1);
    assert.equal((await storeStats(changedStore)).entries, clipCount - 1);
  } finally {
    fs.writeFileSync(rewritten, original);
  }
});

const usageCases = [
  ['extract without --features', ['extract', datasetFolder]],
  ['an unknown --features-dtype', ['extract', datasetFolder, '--features', 'x', '--features-dtype', 'int8']],
  ['a zero --features-max-gb', ['extract', datasetFolder, '--features', 'x', '--features-max-gb', '0']],
  ['--features-max-gb without --features', ['train', datasetFolder, '-o', 'm.safetensors', '--features-max-gb', '1']],
  ['--features-dtype without --features', ['evaluate', 'm.safetensors', datasetFolder, '--features-dtype', 'bf16']],
  ['a backbone identity that is not 64 hex digits', ['features', 'prune', 'x', '--keep-backbone', 'abc']],
  ['an unknown features subcommand', ['features', 'list', 'x']],
];

for (const [what, args] of usageCases) {
  test(`${what} is a usage error: exit 2, E_USAGE`, async () => {
    const result = await runCli(args);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr.trimEnd(), /^video-rnn: E_USAGE: \S/);
    assert.equal(result.stdout, '');
  });
}

test('features stats on a folder that does not exist is E_FEATURE_STORE, exit 1, and makes nothing', async () => {
  const missing = path.join(folder, 'no-store');
  const result = await runCli(['features', 'stats', missing]);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /^video-rnn: E_FEATURE_STORE: No feature store at /m);
  assert.equal(fs.existsSync(missing), false);
});
