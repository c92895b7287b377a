// The feature store, measured side by side in one run on a rendered dataset (bench/render-dataset.mjs:
// 320x240 H.264 at 25 fps, 5 to 10 s, eight motion classes), sampled at 5 fps and 112 px:
//   1. `video-rnn extract` clips/s against train's epoch 1 on the same data;
//   2. an epoch from the store in a new process, against the memory cache and against cold;
//   3. peak RSS (VmHWM) training from the store with cacheMB a quarter of the features, against holding all;
//   4. two extract processes into one store at once against one: entries once, none corrupt, time;
//   5. extract killed with SIGKILL midway, then resumed: work not redone, the store equal bit for bit;
//   6. held-out accuracy trained from float32 entries against bf16 entries.
// Every measured run is its own process (the CLI, or this file with BENCH_FEATURES_JOB), so that each
// starts cold and has its own peak RSS. Writes bench/results/features.json and features.md
// (--quick: features-quick.*).
//   node bench/features.mjs [--clips 600] [--precision fp32|bf16] [--threads N] [--epochs 30] [--work DIR] [--quick]
//     [--subset N]   rows 4, 5 and 6 on N of the clips (the same number per class), with fc7 computed in fp32
//                    whatever --precision says, against one fp32 process on the same clips: fp32 fc7 does not
//                    depend on which clips share a batch (bf16's does, in a few values: oneDNN's bf16 kernels
//                    round differently for other row counts), so a resumed run can be compared bit for bit;
//                    and fc7 computed in bf16 is exact in bf16, so half-size storage is measured on fp32 rows
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argument, benchFolder, flag, loadAverage, machine, repositoryRoot, round } from './common.mjs';
import { renderDataset } from './render-dataset.mjs';

const frameSize = 112;
const fps = 5;
const hiddenSize = 128;

if (process.env.BENCH_FEATURES_JOB) {
  process.stdout.write(JSON.stringify(await job(JSON.parse(process.env.BENCH_FEATURES_JOB))) + '\n');
  process.exit(0);
}

/** VmHWM (peak resident memory since the start or the last reset) or VmRSS of this process, in MB (Linux). */
function rssMB(field = 'VmHWM') {
  const line = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return line ? round(Number(line[1]) / 1024, 1) : null;
}

/**
 * Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux 4.0 and later), so that the peak read
 * later is training's own: loading the backbone file passes through a transient peak of its own.
 */
function resetPeakRss() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** One measured run inside a child process: a backbone file, or training (and evaluating) a model. */
async function job(spec) {
  const library = await import('../dist/index.js');
  if (spec.kind === 'convert') return convertStore(library, spec);
  if (spec.kind === 'backbone') {
    const model = await library.VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 1, headSize: 1, frameSize, seed: spec.seed });
    await model.saveBackbone(spec.output);
    model.dispose();
    return { identity: (await library.loadBackbone(spec.output)).reference.identity };
  }
  const data = await library.VideoFolderDataset.open(spec.data);
  const { train, validation } = spec.heldOut ? library.split(data, spec.heldOut, spec.seed) : { train: data, validation: undefined };
  const model = await library.VideoRNN.create({
    classes: data.classes, backboneWeights: spec.backbone, hiddenSize, headSize: 128, frameSize, sampling: { fps },
    precision: spec.precision, threads: spec.threads, seed: spec.seed, cacheMB: spec.cacheMB, featureStore: spec.featureStore,
  });
  const loadPeakRssMB = rssMB();
  // The weights file's buffers are garbage once the model holds the weights: collected before the baseline.
  global.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const loadedRssMB = rssMB('VmRSS');
  const peakReset = resetPeakRss();
  const report = await model.train(train, { epochs: spec.epochs, batchSize: 8, learningRate: 1e-3, seed: spec.seed });
  const evaluation = validation ? await model.evaluate(validation, { batchSize: 8 }) : undefined;
  // What stays resident once the run is over (the cache's rows included), beside the transient peak.
  const endRssMB = rssMB('VmRSS');
  const stats = model.stats;
  model.dispose();
  return {
    clips: train.size,
    epochs: report.epochs.map((epoch) => ({ seconds: round(epoch.seconds), loss: round(epoch.loss, 5), accuracy: round(epoch.accuracy) })),
    heldOut: evaluation ? { clips: evaluation.count, accuracy: round(evaluation.accuracy, 4), loss: round(evaluation.loss, 5) } : undefined,
    stats: { framesEmbedded: stats.framesEmbedded, videosDecoded: stats.videosDecoded, featureStoreHits: stats.featureStoreHits,
      featureStoreMisses: stats.featureStoreMisses, featureStoreWrites: stats.featureStoreWrites, embeddingCacheBytes: stats.embeddingCacheBytes },
    loadPeakRssMB, loadedRssMB, peakReset, endRssMB,
    // With the reset, the peak while training (and evaluating); without it, the process's whole peak.
    peakRssMB: rssMB(),
  };
}

/**
 * Every entry of a store written again into a new store of another dtype, under the same key and
 * origin: what an extract with --features-dtype would have written from the same rows, without a
 * second pass through the CNN.
 */
async function convertStore(library, spec) {
  const from = await library.FeatureStore.open(spec.from, () => undefined);
  const to = await library.FeatureStore.open({ path: spec.to, dtype: spec.dtype }, () => undefined);
  let converted = 0;
  for (const shard of fs.readdirSync(path.join(spec.from, 'entries'))) {
    for (const name of fs.readdirSync(path.join(spec.from, 'entries', shard)).filter((file) => file.endsWith('.feat'))) {
      const key = name.slice(0, -'.feat'.length);
      const entry = await from.get(key);
      if (entry && await to.put(key, entry.data, entry.frames, entry.origin)) converted += 1;
    }
  }
  return { converted };
}

/** A dataset folder of `count` clips of `data` (the same number per class, the first by name), as hard links. */
function subsetFolder(data, folder, count) {
  fs.rmSync(folder, { recursive: true, force: true });
  const classes = fs.readdirSync(data).filter((name) => fs.statSync(path.join(data, name)).isDirectory()).sort();
  const each = Math.max(1, Math.floor(count / classes.length));
  for (const label of classes) {
    fs.mkdirSync(path.join(folder, label), { recursive: true });
    for (const file of fs.readdirSync(path.join(data, label)).sort().slice(0, each)) fs.linkSync(path.join(data, label, file), path.join(folder, label, file));
  }
  return each * classes.length;
}

/** A child process; resolves with its output and wall time. `onStderr` sees stderr as it arrives and may kill it. */
function start(args, { env = {}, onStderr } = {}) {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: repositoryRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (text) => { stdout += text; });
  child.stderr.on('data', (text) => {
    stderr += text;
    onStderr?.(stderr, child);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 }));
  });
}

function lastJson(run, what) {
  if (run.code !== 0) throw new Error(`${what} exited with ${run.code ?? run.signal}:\n${run.stderr.slice(-3000)}`);
  const lines = run.stdout.trim();
  return { ...JSON.parse(lines.startsWith('{') && !lines.includes('\n{') ? lines : lines.split('\n').pop()), wallSeconds: round(run.seconds) };
}

async function runJob(spec, what) {
  process.stderr.write(`features bench: ${what}\n`);
  return lastJson(await start(['--expose-gc', path.join(benchFolder, 'features.mjs')], { env: { BENCH_FEATURES_JOB: JSON.stringify(spec) } }), what);
}

const cli = path.join(repositoryRoot, 'dist', 'cli.js');

/** Every entry's rows (keys from the folder's layout, rows through the store's checked `get`), and its stats. */
async function readStore(folder) {
  const { FeatureStore } = await import('../dist/index.js');
  const store = await FeatureStore.open(folder, () => undefined);
  const entries = new Map();
  const shards = fs.existsSync(path.join(folder, 'entries')) ? fs.readdirSync(path.join(folder, 'entries')) : [];
  for (const shard of shards) {
    for (const name of fs.readdirSync(path.join(folder, 'entries', shard)).filter((file) => file.endsWith('.feat'))) {
      const found = await store.get(name.slice(0, -'.feat'.length));
      if (found) entries.set(name.slice(0, -'.feat'.length), Buffer.from(found.data.buffer, found.data.byteOffset, found.data.byteLength));
    }
  }
  return { stats: await store.stats(), entries };
}

/** Entries of `a` that differ from `b`'s (or are missing from it), and keys only in `b`. */
function differences(a, b) {
  let differ = 0;
  for (const [key, payload] of a) if (!b.has(key) || Buffer.compare(payload, b.get(key)) !== 0) differ += 1;
  for (const key of b.keys()) if (!a.has(key)) differ += 1;
  return differ;
}

async function main() {
  const quick = flag('quick');
  const clips = argument('clips', quick ? 40 : 600);
  const precision = argument('precision', 'fp32');
  const threads = argument('threads', os.availableParallelism());
  const epochs = argument('epochs', quick ? 8 : 30);
  const subset = Math.min(argument('subset', clips), clips);
  const work = argument('work', null) ?? fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-features-bench-'));
  const keep = argument('work', null) !== null;
  const name = quick ? 'features-quick' : 'features';
  const loadStart = loadAverage();
  const started = performance.now();
  const data = path.join(work, 'data');
  const backbone = path.join(work, 'vgg16-seed1.safetensors');
  const store = (label) => path.join(work, `store-${label}`);
  for (const label of ['one', 'subset-one', 'two', 'killed', 'subset-bf16']) fs.rmSync(store(label), { recursive: true, force: true });
  const results = { date: new Date().toISOString(), machine: machine(), settings: { clips, subset, subsetPrecision: 'fp32', frameSize, fps, precision, threads, hiddenSize, epochs,
    backbone: 'VGG16 with random weights (seed 1), saved once as a safetensors file all runs share' } };

  process.stderr.write(`features bench: rendering ${clips} clips into ${data}\n`);
  const render = performance.now();
  const plan = await renderDataset(data, { clips, seed: 1 });
  results.dataset = { clips: plan.length, classes: [...new Set(plan.map((clip) => clip.motion))],
    seconds: round(plan.reduce((sum, clip) => sum + clip.seconds, 0) / plan.length, 2), renderSeconds: round((performance.now() - render) / 1000, 1) };
  if (!fs.existsSync(backbone)) await runJob({ kind: 'backbone', seed: 1, output: backbone }, 'backbone file');
  const common = ['--weights', backbone, '--frame-size', String(frameSize), '--fps', String(fps), '--precision', precision, '--json'];
  const extract = (label, extra = [], options = {}, folder = data) => start([cli, 'extract', folder, '--features', store(label), ...common, ...extra], options);
  const subsetData = path.join(work, 'data-subset');
  const subsetClips = subset < clips ? subsetFolder(data, subsetData, subset) : clips;
  const rowsData = subset < clips ? subsetData : data;
  // Rows 4 to 6 run the CNN in fp32 (see the head of this file).
  const fp32Common = common.map((value, index) => (common[index - 1] === '--precision' ? 'fp32' : value));
  const extract32 = (label, extra = [], options = {}) => start([cli, 'extract', rowsData, '--features', store(label), ...fp32Common, ...extra], options);

  // 1 and the reference store: one process, all threads.
  process.stderr.write('features bench: extract, one process\n');
  const one = lastJson(await extract('one', ['--threads', String(threads)]), 'extract');
  const reference = await readStore(store('one'));
  const featureMB = reference.stats.bytes / 2 ** 20;
  // 1 and 2: cold epoch 1 and a memory-cache epoch 2 in one process; then epoch 1 from the store in a new one.
  const holdAllMB = Math.max(1024, Math.ceil(featureMB * 2));
  const base = { kind: 'train', data, backbone, precision, threads, seed: 1 };
  const cold = await runJob({ ...base, epochs: 2, cacheMB: holdAllMB }, 'train without the store (cold, then memory)');
  const warm = await runJob({ ...base, epochs: 2, cacheMB: holdAllMB, featureStore: store('one') }, 'train from the store, new process');
  // 3: the cache in front of the store bounded to a quarter of the features.
  const quarterMB = Math.max(1, Math.floor(featureMB / 4));
  const bounded = await runJob({ ...base, epochs: 3, cacheMB: quarterMB, featureStore: store('one') }, `train from the store, cacheMB ${quarterMB}`);
  results.extractVsTrain = {
    extract: { clips: one.clips, seconds: round(one.seconds), clipsPerSecond: round(one.clipsPerSecond), wallSeconds: one.wallSeconds },
    trainEpoch1: { clips: cold.clips, seconds: cold.epochs[0].seconds, clipsPerSecond: round(cold.clips / cold.epochs[0].seconds) },
  };
  results.epochs = {
    coldSeconds: cold.epochs[0].seconds, memoryCacheSeconds: cold.epochs[1].seconds, storeNewProcessSeconds: warm.epochs[0].seconds,
    storeOverMemory: round(warm.epochs[0].seconds / cold.epochs[1].seconds, 2), goal: 'store epoch in a new process within 1.5x of a memory-cache epoch',
    storeRun: warm.stats, coldRun: cold.stats,
  };
  results.memory = {
    featuresMB: round(featureMB, 1), storeDtype: reference.stats.dtype,
    boundedCacheMB: quarterMB, boundedPeakRssMB: bounded.peakRssMB, boundedEpochSeconds: bounded.epochs.map((epoch) => epoch.seconds),
    holdAllCacheMB: holdAllMB, holdAllPeakRssMB: warm.peakRssMB, withoutStorePeakRssMB: cold.peakRssMB, boundedRun: bounded.stats,
    rssAfterLoadMB: bounded.loadedRssMB, peakWhileLoadingMB: bounded.loadPeakRssMB,
    boundedEndRssMB: bounded.endRssMB, holdAllEndRssMB: warm.endRssMB,
    measured: bounded.peakReset ? 'VmHWM reset after the model is made (clear_refs), so the peak is training\'s own' : 'VmHWM of the whole process (no clear_refs)',
  };

  // 4: two processes into one store at once, the cores split between them, against one process on the same clips.
  process.stderr.write(`features bench: extract, one process, ${subsetClips} clips, fp32\n`);
  const oneOnRows = lastJson(await extract32('subset-one', ['--threads', String(threads)]), 'extract (subset)');
  const subsetReference = await readStore(store('subset-one'));
  process.stderr.write('features bench: two extract processes at once\n');
  const half = String(Math.max(1, Math.floor(threads / 2)));
  const pairStarted = performance.now();
  const pair = (await Promise.all([extract32('two', ['--threads', half]), extract32('two', ['--threads', half])]))
    .map((run) => lastJson(run, 'extract (pair)'));
  const pairSeconds = (performance.now() - pairStarted) / 1000;
  const shared = await readStore(store('two'));
  results.twoProcesses = {
    computed: pair.map((report) => report.computed), present: pair.map((report) => report.present), entries: shared.stats.entries,
    expected: subsetClips, corrupt: shared.stats.corrupt, claims: shared.stats.claims, seconds: round(pairSeconds), oneProcessSeconds: oneOnRows.wallSeconds,
    entriesDifferingFromOneProcess: differences(shared.entries, subsetReference.entries),
  };

  // 5: SIGKILL once half the clips are done, then the same command again.
  process.stderr.write('features bench: extract killed midway, then resumed\n');
  const killed = await extract32('killed', ['--threads', String(threads)], { onStderr: (text, child) => {
    const done = [...text.matchAll(/^extract +(\d+)\/(\d+) clips/gm)].pop();
    if (done && Number(done[1]) >= Number(done[2]) / 2) child.kill('SIGKILL');
  } });
  const afterKill = (await readStore(store('killed'))).stats;
  const resumed = lastJson(await extract32('killed', ['--threads', String(threads)]), 'extract (resumed)');
  const final = await readStore(store('killed'));
  results.killResume = {
    killed: killed.signal === 'SIGKILL', entriesAfterKill: afterKill.entries, claimsAfterKill: afterKill.claims,
    resumedPresent: resumed.present, resumedComputed: resumed.computed, entries: final.stats.entries, expected: subsetClips, corrupt: final.stats.corrupt,
    entriesDifferingFromUninterrupted: differences(final.entries, subsetReference.entries),
    killedSeconds: round(killed.seconds), resumedSeconds: resumed.wallSeconds,
  };

  // 6: the same training from float32 entries and from bf16 entries, evaluated on the same held-out fifth: the
  // fp32 rows of row 4's one-process store, written again as bf16 (what --features-dtype bf16 would have stored).
  const converted = await runJob({ kind: 'convert', from: store('subset-one'), to: store('subset-bf16'), dtype: 'bf16' }, 'bf16 copy');
  const float32Stats = subsetReference.stats;
  const bf16Stats = (await readStore(store('subset-bf16'))).stats;
  const accuracy = { ...base, data: rowsData, precision: 'fp32', epochs, cacheMB: holdAllMB, heldOut: 0.2 };
  const fromFloat32 = await runJob({ ...accuracy, featureStore: store('subset-one') }, 'accuracy from float32 entries');
  const fromBf16 = await runJob({ ...accuracy, featureStore: store('subset-bf16') }, 'accuracy from bf16 entries');
  results.halfSize = {
    clips: subsetClips, computedIn: 'fp32', converted: converted.converted,
    float32: { storeMB: round(float32Stats.bytes / 2 ** 20, 1), heldOut: fromFloat32.heldOut, finalLoss: fromFloat32.epochs.at(-1).loss,
      trainAccuracy: fromFloat32.epochs.at(-1).accuracy, stats: fromFloat32.stats },
    bf16: { storeMB: round(bf16Stats.bytes / 2 ** 20, 1), heldOut: fromBf16.heldOut, finalLoss: fromBf16.epochs.at(-1).loss,
      trainAccuracy: fromBf16.epochs.at(-1).accuracy, stats: fromBf16.stats },
  };
  results.seconds = round((performance.now() - started) / 1000, 1);
  results.loadAverage = { start: loadStart, end: loadAverage() };
  const output = path.join(benchFolder, 'results', `${name}.json`);
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(output, JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(output.replace(/\.json$/, '.md'), table(results, path.basename(output)) + '\n');
  process.stderr.write(`features bench: written to ${output} and ${path.basename(output, '.json')}.md\n`);
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
}

/** Below by at least half of what the bound keeps out of memory; a smaller gap is within noise. */
function rssVerdict(m) {
  const kept = m.featuresMB - m.boundedCacheMB;
  const saved = m.holdAllPeakRssMB - m.boundedPeakRssMB;
  if (saved >= kept / 2) return `yes (${round(saved, 1)} MB below)`;
  return `not shown: peaks ${round(saved, 1)} MB apart, the bound keeps ${round(kept, 1)} MB out`;
}

function table(r, file) {
  const e = r.extractVsTrain;
  const m = r.memory;
  const p = r.twoProcesses;
  const k = r.killResume;
  const h = r.halfSize;
  const rows = [
    ['1', 'extract against train epoch 1 (same clips)', `${e.extract.clipsPerSecond} clips/s (${e.extract.seconds} s)`,
      `${e.trainEpoch1.clipsPerSecond} clips/s (${e.trainEpoch1.seconds} s)`, ''],
    ['2', 'epoch: store in a new process / memory cache / cold', `${r.epochs.storeNewProcessSeconds} s / ${r.epochs.memoryCacheSeconds} s / ${r.epochs.coldSeconds} s`,
      `store ${r.epochs.storeOverMemory}x memory`, r.epochs.storeOverMemory <= 1.5 ? 'yes (<= 1.5x)' : 'no (goal <= 1.5x)'],
    ['3', `peak RSS while training (RSS at the end): cacheMB ${m.boundedCacheMB} (a quarter of ${m.featuresMB} MB) / holding all; RSS after loading ${m.rssAfterLoadMB} MB`,
      `${m.boundedPeakRssMB} MB (${m.boundedEndRssMB} MB)`, `${m.holdAllPeakRssMB} MB (${m.holdAllEndRssMB} MB)`, rssVerdict(m)],
    ['4', `two extract processes into one store / one process (${p.expected} clips, fp32)`, `${p.seconds} s, computed ${p.computed.join(' + ')}, ${p.entries} entries of ${p.expected}, ${p.corrupt} corrupt`,
      `${p.oneProcessSeconds} s; ${p.entriesDifferingFromOneProcess} entries differ from it`,
      p.entries === p.expected && p.corrupt === 0 && p.computed[0] + p.computed[1] === p.expected && p.entriesDifferingFromOneProcess === 0 ? 'yes (each once, bit for bit)' : 'no'],
    ['5', `SIGKILL midway, then resumed (${k.expected ?? p.expected} clips, fp32)`, `${k.entriesAfterKill} entries kept, resume: ${k.resumedPresent} present, ${k.resumedComputed} computed`,
      `${k.entriesDifferingFromUninterrupted} entries differ from an uninterrupted run`,
      k.killed && k.resumedPresent === k.entriesAfterKill && k.entriesDifferingFromUninterrupted === 0 ? 'yes (bit for bit)' : 'no'],
    ['6', `held-out accuracy (${h.float32.heldOut?.clips} of ${h.clips ?? ''} clips, fc7 in ${h.computedIn ?? r.settings.precision}; final loss): float32 / bf16 entries`,
      `${h.float32.heldOut?.accuracy} (${h.float32.storeMB} MB; ${h.float32.finalLoss})`,
      `${h.bf16.heldOut?.accuracy} (${h.bf16.storeMB} MB; ${h.bf16.finalLoss})`, ''],
  ];
  return [`Run of ${r.date} (\`bench/results/${file}\`): ${r.dataset.clips} clips of ${r.dataset.seconds} s on average, ` +
    `${r.settings.fps} fps, ${r.settings.frameSize} px, precision ${r.settings.precision}, ${r.settings.threads} threads, ${r.machine.cores} cores (${r.machine.cpu}), ` +
    `${r.seconds} s in all; load average ${r.loadAverage.start} at the start, ${r.loadAverage.end} at the end.`, '',
  '| # | Measurement | Result | Against | Met |', '|---|---|---|---|---|', ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

// --table FILE.json: the table again from a results file (after a change to the table only).
if (argument('table', null)) {
  const file = argument('table', null);
  fs.writeFileSync(file.replace(/\.json$/, '.md'), table(JSON.parse(fs.readFileSync(file, 'utf8')), path.basename(file)) + '\n');
} else {
  await main();
}
