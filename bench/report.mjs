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
const profile = read('profile');
const precision = read('precision');
const trainingOneThread = read('training-1-thread');
const levers = read('levers');

const fmt = (value, digits = 2) => (value === null || value === undefined ? 'n/a' : Number(value).toFixed(digits));
const verdict = (met) => (met === null ? 'n/a' : met ? 'yes' : '**no**');
const rows = [];
const targets = {};

if (predict) {
  const ours = predict.sides.ours;
  const reference = predict.sides.reference;
  targets.predict = { value: ours.speedupOverReference, target: '>= 1.5', met: ours.speedupOverReference >= 1.5 };
  const blas = predict.blas?.OPENBLAS_CORETYPE ? `, both OPENBLAS_CORETYPE=${predict.blas.OPENBLAS_CORETYPE}` : '';
  rows.push(['1', `predict fp32, ${predict.workload.clips} clips (${predict.workload.frames} frames) at ${predict.workload.frameSize} px, hidden ${predict.workload.hiddenSize}${blas}`,
    `${fmt(ours.clipsPerSecond, 3)} clips/s`, `${fmt(reference.clipsPerSecond, 3)} clips/s`, `${fmt(ours.speedupOverReference)}x`, '>= 1.5x',
    verdict(targets.predict.met)]);
  for (const [name, side] of Object.entries(predict.sides)) {
    if (name === 'ours' || name === 'reference') continue;
    rows.push(['1', `predict, ours vs ${name} (not a target)`, `${fmt(ours.clipsPerSecond, 3)} clips/s`,
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
  if (overlap.decodeCpuSeconds !== undefined) {
    rows.push(['5', `decoding's CPU time (ffmpeg, ffprobe, helper) and the floor it sets with the CNN on every core: (compute + CPU / ${overlap.cores} cores) / compute`,
      `${fmt(overlap.decodeCpuSeconds)} core-s`, '', `floor ${fmt(overlap.boundOverCompute)}`, '', '']);
  }
  const statics = overlap.staticFfmpeg;
  if (statics?.epoch1Seconds !== undefined) {
    targets.overlapStaticFfmpeg = { value: statics.epochOverMaxOfParts, target: '<= 1.1', met: statics.epochOverMaxOfParts <= 1.1 };
    rows.push(['5', 'overlap with statically linked ffmpeg and ffprobe (bench/static-ffmpeg.mjs): epoch 1 / max(decode only, compute only)',
      `${fmt(statics.epoch1Seconds)} s`, `decode ${fmt(statics.decodeOnlySeconds)} s (CPU ${fmt(statics.decodeCpuSeconds)} core-s), compute ${fmt(overlap.computeOnlySeconds)} s`,
      `${fmt(statics.epochOverMaxOfParts)}`, '<= 1.1', verdict(targets.overlapStaticFfmpeg.met)]);
  }
}
if (trainingOneThread) {
  const overlap = trainingOneThread.overlap;
  rows.push(['5', 'overlap with 1 intra-op thread (a core left to decoding): epoch 1 / max(decode only, compute only)', `${fmt(overlap.epoch1Seconds)} s`,
    `decode ${fmt(overlap.decodeOnlySeconds)} s, compute ${fmt(overlap.computeOnlySeconds)} s`, `${fmt(overlap.epochOverMaxOfParts)}`, '', '']);
}
const loops = [['predicting', predict?.sides.ours.eventLoopMs], ['training', training?.ours.eventLoopMs]].filter(([, value]) => value);
if (loops.length > 0) {
  targets.eventLoopMax = { value: Object.fromEntries(loops.map(([name, value]) => [name, value.max])), target: 'max < 50 ms, p99 < 20 ms',
    met: loops.every(([, value]) => value.max < 50 && value.p99 < 20) };
  for (const [name, value] of loops) {
    rows.push(['6', `event-loop delay while ${name} (p50 / p99 / max)`, `${fmt(value.p50)} / ${fmt(value.p99)} / ${fmt(value.max, 1)} ms`, '', '',
      'max < 50 ms', verdict(value.max < 50 && value.p99 < 20)]);
  }
}
if (precision) {
  const p = precision;
  const workload = `${p.workload.heldOutClips} held-out clips of ${p.workload.framesPerClip} frames at ${p.workload.frameSize} px`;
  targets.bf16Agreement = { value: p.agreement.oursBf16WithOursFp32, target: '>= 0.99', met: p.agreement.oursBf16WithOursFp32 >= 0.99 };
  rows.push(['8', `bf16 top-1 agreement with fp32, ${workload}`, fmt(p.agreement.oursBf16WithOursFp32, 4), fmt(p.agreement.referenceBf16WithReferenceFp32, 4), '',
    '>= 0.99', verdict(targets.bf16Agreement.met)]);
  rows.push(['8', 'bf16 fc7 relative difference from fp32 (median / max over clips)', `${fmt(p.embeddingRelativeDifference.median, 4)} / ${fmt(p.embeddingRelativeDifference.max, 4)}`, '', '', '', '']);
  rows.push(['8', `predict time, bf16 / fp32 (${workload})`, `${fmt(p.predictSeconds['ours bf16'])} / ${fmt(p.predictSeconds['ours fp32'])} s`,
    `${fmt(p.predictSeconds['reference bf16'])} / ${fmt(p.predictSeconds['reference fp32'])} s`, `ours bf16 ${fmt(p.ratios.oursBf16OverFp32Predict)}x the time of fp32`, '', '']);
  rows.push(['8', `training epoch 1, bf16 / fp32 (${p.workload.trainingClips} clips)`, `${fmt(p.epoch1Seconds['ours bf16'])} / ${fmt(p.epoch1Seconds['ours fp32'])} s`,
    `${fmt(p.epoch1Seconds['reference bf16'])} / ${fmt(p.epoch1Seconds['reference fp32'])} s`, `ours bf16 ${fmt(p.ratios.oursBf16OverFp32Epoch1)}x the time of fp32`, '', '']);
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
  predict, profile, levers, backbone, packing, training, trainingOneThread, precision, memory,
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
  `OPENBLAS_NUM_THREADS=1 (fc6/fc7 split across LibTorch's threads), OpenBLAS ${settings?.ours?.info?.openblasCore ?? 'default'} kernels, ` +
  `VGG16's first convolution through oneDNN with weights reordered once and the other twelve as Winograd F(4x4, 3x3) ` +
  `(native/winograd.h), tensors of 4 MiB or more in huge pages. ` +
  `Reference: Python ${reference?.python ?? ''}, torch ${reference?.torch ?? ''}, torch.set_num_threads(${reference?.torchThreads ?? ''}), ` +
  `OpenBLAS ${reference?.openblas ? `${reference.openblas.threads} threads, ${reference.openblas.core} kernels` : 'not found'}, NCHW. ` +
  `OPENBLAS_CORETYPE for both: ${predict?.blas?.OPENBLAS_CORETYPE ?? 'unset'} (chosen by ${predict?.blas?.chosenBy ?? 'nobody'}).`,
  '',
  '| # | Measurement | Ours | Reference | Ratio | Target | Met |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((row) => `| ${row.join(' | ')} |`),
];
if (profile) {
  const cpu = profile.peak;
  table.push('', `Where a predict's time goes (${profile.workload.clips} clips, ${profile.workload.frames} frames at ${profile.workload.frameSize} px, batch ${profile.workload.batch}; ` +
    `median of ${profile.rounds} rounds, ${fmt(profile.wallMs / 1000)} s in all). Peak fp32: ${cpu.cores} cores x ${fmt(cpu.megahertz / 1000)} GHz x ` +
    `${cpu.fp32FlopsPerCycle} FLOP/cycle = ${fmt(cpu.gflops, 1)} GFLOP/s (${cpu.vectorFlags.join(', ')}; CPU family ${cpu.cpuFamily} model ${cpu.cpuModel}). ` +
    `${profile.oneDnn.version ?? 'oneDNN'}: ISA ${profile.oneDnn.isa ?? 'not reported'}; kernels of one steady forward: ` +
    `${Object.entries(profile.oneDnn.kernelsPerForward).map(([kernel, count]) => `${count} x ${kernel}`).join(', ')}.`, '',
    '| Part | ms | % of wall | GFLOP/s | % of peak |', '|---|---|---|---|---|',
    ...profile.rows.map((row) => `| ${row.part} | ${fmt(row.ms, 0)} | ${fmt(row.percent, 1)} | ${row.gflopPerSecond !== undefined ? fmt(row.gflopPerSecond, 1) : ''} | ${row.percentOfPeak !== undefined ? fmt(row.percentOfPeak, 1) : ''} |`),
    '', `CNN overall: ${fmt(profile.cnn.gflopPerSecond, 1)} GFLOP/s, ${fmt(profile.cnn.percentOfPeak, 1)} % of peak (${fmt(profile.cnn.gflopPerFrame, 2)} GFLOP per frame, ` +
    'a multiply-add counted as two; GFLOP/s counts the multiply-adds of a direct convolution, and the Winograd convolutions do about ' +
    'a quarter of them, so the convolutions\' figure can exceed the peak). ' +
    `CPU time during the predict: ffmpeg and ffprobe ${fmt(profile.cpuSeconds.ffmpegAndFfprobe)} s, the JavaScript thread ${fmt(profile.cpuSeconds.mainThread)} s; ` +
    `decoding alone (no model running) takes ${fmt(profile.decodeOnly.seconds)} s wall.`);
}
if (levers) {
  table.push('', `Levers, one at a time: our predict on ${levers.workload.clips} clips, ${levers.rounds} rounds alternating ` +
    '(time over the baseline\'s, round by round; above 1.00 means the variant is faster than the defaults):', '',
    '| Variant | median s | speed vs defaults | event-loop max ms |', '|---|---|---|---|',
    ...Object.entries(levers.variants).map(([name, value]) =>
      `| ${name} | ${fmt(value.medianSeconds)} | ${fmt(value.speedOverBaseline)}x | ${fmt(value.eventLoopMaxMs, 0)} |`));
}
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
