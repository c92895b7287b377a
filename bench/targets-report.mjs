// Gathers bench/targets.sh's results into one table (targets.md beside them) with each target's verdict.
//   node bench/targets-report.mjs --folder bench/results/targets
import fs from 'node:fs';
import path from 'node:path';
import { argument, machine, median, round } from './common.mjs';

const folder = argument('folder', null);
if (!folder) throw new Error('--folder is required');
const read = (name) => JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8'));
const exists = (name) => fs.existsSync(path.join(folder, name));
const text = (name) => (exists(name) ? fs.readFileSync(path.join(folder, name), 'utf8').trim() : '?');
const fmt = (value, digits = 2) => (value === null || value === undefined ? 'n/a' : Number(value).toFixed(digits));
const verdict = (met) => (met === null ? 'n/a' : met ? 'yes' : '**no**');

const targets = read('targets.json');
const precision = read('precision.json');
const rows = [];
const add = (measurement, ours, reference, ratio, target, met) =>
  rows.push([measurement, ours, reference, ratio, target, verdict(met)]);

const cps = targets.clipsPerSecond;
const r = targets.ratios;
const workload = `${targets.workload.clips} clips (${targets.workload.frames} frames), ${targets.workload.frameSize} px`;
add(`predict fp32, ${workload}`, `${fmt(cps['ours fp32'], 3)} clips/s`, `${fmt(cps['reference fp32'], 3)} clips/s (seed)`,
  `${fmt(r.oursFp32OverSeedFp32)}x`, '>= 1.5x', r.oursFp32OverSeedFp32 >= 1.5);
add('predict bf16 (ours) against the seed in fp32', `${fmt(cps['ours bf16'], 3)} clips/s`, `${fmt(cps['reference fp32'], 3)} clips/s`,
  `${fmt(r.oursBf16OverSeedFp32)}x`, '>= 5x', r.oursBf16OverSeedFp32 >= 5);
add('predict bf16 against torch.autocast bf16', `${fmt(cps['ours bf16'], 3)} clips/s`, `${fmt(cps['reference bf16 autocast'], 3)} clips/s`,
  `${fmt(r.oursBf16OverAutocast)}x`, '>= 1.5x', r.oursBf16OverAutocast >= 1.5);
const agreement = precision.agreement.oursBf16WithOursFp32;
add(`bf16 top-1 agreement with fp32, ${precision.workload.heldOutClips} trained held-out clips`, fmt(agreement, 4),
  fmt(precision.agreement.referenceBf16WithReferenceFp32, 4), '', '>= 0.99 on >= 48 clips',
  agreement >= 0.99 && precision.workload.heldOutClips >= 48);
const small = `${precision.workload.heldOutClips} clips x ${precision.workload.framesPerClip} frames at ${precision.workload.frameSize} px`;
const p = precision.predictSeconds;
const smallFp32 = p['reference fp32'] / p['ours fp32'];
const smallBf16 = p['reference bf16'] / p['ours bf16'];
add(`small clips fp32 predict, ${small}`, `${fmt(p['ours fp32'])} s`, `${fmt(p['reference fp32'])} s`, `${fmt(smallFp32)}x`, '>= 1.3x', smallFp32 >= 1.3);
add(`small clips bf16 predict, ${small}`, `${fmt(p['ours bf16'])} s`, `${fmt(p['reference bf16'])} s (autocast)`, `${fmt(smallBf16)}x`, '>= 1.3x', smallBf16 >= 1.3);

// This tree against BASE: decoding CPU per clip and serve at 16 clients, each round's ratio then the median.
const rounds = fs.readdirSync(folder).map((name) => /^starts-this-(\d+)\.json$/.exec(name)?.[1]).filter(Boolean).sort();
const pairs = (prefix) => rounds.filter((round) => exists(`${prefix}-base-${round}.json`))
  .map((round) => [read(`${prefix}-this-${round}.json`), read(`${prefix}-base-${round}.json`)]);
const startsPairs = pairs('starts');
if (startsPairs.length > 0) {
  const thisCpu = median(startsPairs.map(([a]) => a.decodeCpuSecondsPerClip.median));
  const baseCpu = median(startsPairs.map(([, b]) => b.decodeCpuSecondsPerClip.median));
  const ratio = median(startsPairs.map(([a, b]) => a.decodeCpuSecondsPerClip.median / b.decodeCpuSecondsPerClip.median));
  const w = startsPairs[0][0].workload;
  add(`decoding CPU per clip, ${w.clips} clips x ${w.frames} frames at ${w.size} px (${w.container})`, `${fmt(thisCpu, 3)} core-s`,
    `${fmt(baseCpu, 3)} core-s (base)`, `${fmt(ratio)}x`, '<= 0.5x', ratio <= 0.5);
}
const servePairs = pairs('serve');
const cell = (result, clients, mode) => result.table.find((row) => row.clients === clients)?.[mode];
if (servePairs.length > 0) {
  const ratio = median(servePairs.map(([a, b]) => cell(a, 16, 'on').clipsPerSecond / cell(b, 16, 'on').clipsPerSecond));
  const thisCps = median(servePairs.map(([a]) => cell(a, 16, 'on').clipsPerSecond));
  const baseCps = median(servePairs.map(([, b]) => cell(b, 16, 'on').clipsPerSecond));
  add('`video-rnn serve`, 16 clients, batching on', `${fmt(thisCps)} clips/s`, `${fmt(baseCps)} clips/s (base)`,
    `${fmt(ratio)}x`, '>= 2x', ratio >= 2);
  const p50 = (result) => cell(result, 1, 'on')?.p50Ms;
  add('`video-rnn serve`, 1 client, p50 latency (not a target)', `${fmt(median(servePairs.map(([a]) => p50(a))), 0)} ms`,
    `${fmt(median(servePairs.map(([, b]) => p50(b))), 0)} ms (base)`, '', '', null);
}

const m = machine();
const lines = [
  `Run started ${text('started')}; load average (1, 5, 15 min) ${text('load-start')} at the start, ${text('load-end')} at the end.`,
  `CPU: ${m.cpu}, family ${m.cpuFeatures?.family} model ${m.cpuFeatures?.model}, ${m.cores} cores; flags: ${m.cpuFeatures?.flags.join(' ')}. ${m.ffmpeg}.`,
  `OPENBLAS_CORETYPE (all sides): ${targets.blas.OPENBLAS_CORETYPE ?? 'default'}. Rounds: ${targets.rounds} (predict), ${precision.rounds} (small clips), ${startsPairs.length} (this tree against base).`,
  '',
  '| Measurement | Ours | Reference | Ratio | Target | Met |',
  '|---|---|---|---|---|---|',
  ...rows.map((row) => `| ${row.join(' | ')} |`),
  '',
];
fs.writeFileSync(path.join(folder, 'targets.md'), lines.join('\n'));
console.log(lines.join('\n'));
