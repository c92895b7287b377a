// Gathers the parts bench/run measured into bench/results/<date>.json and rewrites the results table
// in bench/README.md (between its results markers), with where each target stands.
//   node bench/report.mjs --parts FOLDER --load-start L --load-end L --seconds S [--name gpu-] [--no-readme]
import fs from 'node:fs';
import path from 'node:path';
import { argument, benchFolder, flag, machine, round } from './common.mjs';

const parts = argument('parts', null);
if (!parts) throw new Error('--parts FOLDER is required');
const read = (name) => {
  const file = path.join(parts, `${name}.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
};
const predict = read('predict');
const backbone = read('backbone');
const packing = read('packing');
const training = read('training');
const memory = read('memory');

const fmt = (value, digits = 2) => (value === null || value === undefined ? 'n/a' : Number(value).toFixed(digits));
const verdict = (met) => (met === null ? 'n/a' : met ? 'yes' : '**no**');
const rows = [];
const targets = {};

if (predict) {
  const ours = predict.sides.ours;
  const reference = predict.sides.reference;
  targets.predict = { value: ours.speedupOverReference, target: '>= 1.2', met: ours.speedupOverReference >= 1.2 };
  rows.push(['1', `predict, ${predict.workload.clips} clips (${predict.workload.frames} frames) at ${predict.workload.frameSize} px, hidden ${predict.workload.hiddenSize}`,
    `${fmt(ours.clipsPerSecond, 3)} clips/s`, `${fmt(reference.clipsPerSecond, 3)} clips/s`, `${fmt(ours.speedupOverReference)}x`, '>= 1.2x',
    verdict(targets.predict.met)]);
  for (const [name, side] of Object.entries(predict.sides)) {
    if (name === 'ours' || name === 'reference') continue;
    rows.push(['1', `predict, ours vs ${name} (the reference given our OpenBLAS kernel choice)`, `${fmt(ours.clipsPerSecond, 3)} clips/s`,
      `${fmt(side.clipsPerSecond, 3)} clips/s`, `${fmt(ours.speedupOverReference / side.speedupOverReference)}x`, '', '']);
  }
}
if (backbone) {
  const met = [];
  for (const [size, result] of Object.entries(backbone.results)) {
    const ours = result.variants['ours channels_last'];
    const best = result.variants[result.fastestTorchvision];
    met.push(ours.ratioToBestTorchvision >= 0.95);
    rows.push(['2', `VGG16 forward ${size} px (${result.frames} frames), ours channels_last vs ${result.fastestTorchvision}`,
      `${fmt(ours.framesPerSecond)} frames/s`, `${fmt(best.framesPerSecond)} frames/s`, `${fmt(ours.ratioToBestTorchvision)}x`, '>= 0.95x',
      verdict(ours.ratioToBestTorchvision >= 0.95)]);
  }
  targets.backboneForward = { value: Object.fromEntries(Object.entries(backbone.results)
    .map(([size, result]) => [size, result.variants['ours channels_last'].ratioToBestTorchvision])), target: '>= 0.95', met: met.every(Boolean) };
}
if (packing) {
  const frames = packing.framesEmbedded;
  rows.push(['3', `CNN frames per batch, lengths ${packing.batch.lengths.join(',')}`, `${frames.oursPacked} frames (packed)`,
    `${frames.padded} frames (padded B x maxT)`, `${fmt(frames.paddedOverPacked)}x fewer`, '', '']);
}
if (training) {
  const ratio = training.ratios.referenceEpochOverOursEpoch2;
  targets.epoch2 = { value: ratio, target: '>= 20', met: ratio >= 20 };
  rows.push(['4', `training epoch 1, ${training.workload.clips} clips`, `${fmt(training.ours.epoch1Seconds)} s`,
    `${fmt(training.reference.epochSeconds)} s`, `${fmt(training.ratios.referenceEpochOverOursEpoch1)}x`, '', '']);
  rows.push(['4', 'training epoch 2 (embedding cache)', `${fmt(training.ours.epoch2Seconds)} s`, `${fmt(training.reference.epochSeconds)} s`,
    `${fmt(ratio, 1)}x`, '>= 20x', verdict(targets.epoch2.met)]);
  const losses = training.losses;
  rows.push(['4', 'losses per epoch', losses.ours.map((loss) => loss.toFixed(6)).join(', '), losses.reference.map((loss) => loss.toFixed(6)).join(', '),
    `max diff ${losses.maxAbsoluteDifference.toExponential(1)}`, 'match', verdict(losses.maxAbsoluteDifference < 1e-4)]);
  const overlap = training.overlap;
  targets.overlap = { value: overlap.epochOverMaxOfParts, target: '<= 1.1', met: overlap.epochOverMaxOfParts <= 1.1 };
  rows.push(['5', 'overlap: epoch 1 / max(decode only, compute only)', `${fmt(overlap.epoch1Seconds)} s`,
    `decode ${fmt(overlap.decodeOnlySeconds)} s, compute ${fmt(overlap.computeOnlySeconds)} s`, `${fmt(overlap.epochOverMaxOfParts)}`, '<= 1.1',
    verdict(targets.overlap.met)]);
}
const loops = [['predicting', predict?.sides.ours.eventLoopMs], ['training', training?.ours.eventLoopMs]].filter(([, value]) => value);
if (loops.length > 0) {
  targets.eventLoopP99 = { value: Object.fromEntries(loops.map(([name, value]) => [name, value.p99])), target: '< 20 ms',
    met: loops.every(([, value]) => value.p99 < 20) };
  for (const [name, value] of loops) {
    rows.push(['6', `event-loop delay while ${name} (p50 / p99 / max)`, `${fmt(value.p50)} / ${fmt(value.p99)} / ${fmt(value.max, 0)} ms`, '', '',
      'p99 < 20 ms', verdict(value.p99 < 20)]);
  }
}
if (predict) rows.push(['7', `peak RSS, predict on ${predict.workload.clips} clips`, `${fmt(predict.sides.ours.peakRssMB, 0)} MB`, '', '', '', '']);
if (memory) {
  targets.rssGrowth = { value: memory.growthPercent, target: '< 5 %', met: memory.growthPercent < 5 };
  rows.push(['7', `RSS after ${memory.predicts} vs ${memory.early} predicts`, `${fmt(memory.rssAfterAllMB, 0)} vs ${fmt(memory.rssAfterEarlyMB, 0)} MB`, '',
    `${fmt(memory.growthPercent)} %`, '< 5 %', verdict(targets.rssGrowth.met)]);
}

const loadStart = Number(argument('load-start', 'NaN'));
const loadEnd = Number(argument('load-end', 'NaN'));
const date = new Date();
const day = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
const settings = predict?.settings ?? training?.settings;
const summary = {
  date: date.toISOString(),
  seconds: round(Number(argument('seconds', 'NaN')), 0),
  loadAverage: { start: loadStart, end: loadEnd },
  machine: machine(),
  settings,
  targets,
  predict, backbone, packing, training, memory,
};
const name = `${argument('name', '')}${day}`;
const output = path.join(benchFolder, 'results', `${name}.json`);
fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, JSON.stringify(summary, null, 2) + '\n');

const reference = settings?.reference;
const table = [
  `Run of ${date.toISOString().slice(0, 16).replace('T', ' ')} UTC (\`bench/results/${name}.json\`), ${summary.machine.cores} cores ` +
  `(${summary.machine.cpu}), ${summary.seconds} s in all. Load average (1 min): ${loadStart} at the start, ${loadEnd} at the end.`,
  '',
  `Ours: LibTorch ${settings?.ours?.info?.torchVersion ?? ''} through the addon, ${settings?.ours?.info?.threads ?? 'all'} intra-op threads, ` +
  `OPENBLAS_NUM_THREADS=1 (fc6/fc7 split across LibTorch's threads), OpenBLAS ${settings?.ours?.info?.openblasCore ?? 'default'} kernels ` +
  `(named from the CPU flags, src/native.ts), channels-last VGG16. ` +
  `Reference: Python ${reference?.python ?? ''}, torch ${reference?.torch ?? ''}, torch.set_num_threads(${reference?.torchThreads ?? ''}), ` +
  `OpenBLAS default (${reference?.openblas ? `${reference.openblas.threads} threads, ${reference.openblas.core} kernels` : 'not found'}), NCHW.`,
  '',
  '| # | Measurement | Ours | Reference | Ratio | Target | Met |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((row) => `| ${row.join(' | ')} |`),
];
if (backbone) {
  table.push('', 'VGG16 forward, every variant (frames/s, median of the rounds; ratio to the fastest torchvision fp32 variant of each round):', '',
    '| Variant | 112 px | 224 px |', '|---|---|---|');
  const names = Object.keys(Object.values(backbone.results)[0].variants);
  for (const variant of names) {
    const cell = (size) => {
      const entry = backbone.results[size]?.variants[variant];
      if (!entry) return 'n/a';
      return `${fmt(entry.framesPerSecond)}${entry.ratioToBestTorchvision !== undefined ? ` (${fmt(entry.ratioToBestTorchvision)}x)` : ''}`;
    };
    table.push(`| ${variant} | ${cell(112)} | ${cell(224)} |`);
  }
}
console.log(table.join('\n'));
console.log(`\nwritten to ${output}`);

if (!flag('no-readme')) {
  const readme = path.join(benchFolder, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const start = '<!-- results:start -->';
  const end = '<!-- results:end -->';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${readme} has no ${start} ... ${end} section`);
  fs.writeFileSync(readme, `${text.slice(0, from + start.length)}\n${table.join('\n')}\n${text.slice(to)}`);
  console.log(`table written to ${readme}`);
}
