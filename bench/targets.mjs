// Predict throughput in fp32 and bf16, ours and the reference, four processes with rounds alternating:
// ours fp32, ours bf16 (prepacked where the CPU has native bf16), the reference in fp32 (the seed
// pipeline) and the reference under torch.autocast('cpu', dtype=torch.bfloat16). Gives the ratios
// the performance targets name (bf16 against the seed in fp32, and against autocast) from one run.
//   node bench/targets.mjs --work FOLDER [--rounds 3] [--batch 8] [--blas-core CORE] [--out FILE]
import { argument, loadAverage, machine, maxRowDifference, median, readFixture, round, startOurs, startReference,
  writeResults } from './common.mjs';

const rounds = argument('rounds', 3);
const batch = argument('batch', 8);
const blasCore = argument('blas-core', null);
const fixture = readFixture();
const files = fixture.predict.files;
const env = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};

const sides = [
  { name: 'ours fp32', precision: 'fp32', side: await startOurs({ env, name: 'ours fp32' }) },
  { name: 'ours bf16', precision: 'bf16', side: await startOurs({ env, name: 'ours bf16' }) },
  { name: 'reference fp32', precision: 'fp32', side: await startReference({ env }) },
  { name: 'reference bf16 autocast', precision: 'bf16', side: await startReference({ env }) },
];
const top1 = (rows) => rows.map((row) => row.indexOf(Math.max(...row)));

try {
  const settings = {};
  for (const { name, precision, side } of sides) {
    settings[name] = await side.request({ op: 'load', checkpoint: fixture.checkpoint, device: 'cpu', precision });
  }
  // One batch each first: oneDNN builds its kernels for new shapes, fluent-ffmpeg queries its binary.
  for (const { side } of sides) await side.request({ op: 'predict', files: files.slice(0, 2), batch });

  const seconds = Object.fromEntries(sides.map(({ name }) => [name, []]));
  const last = {};
  for (let index = 0; index < rounds; index += 1) {
    const order = sides.map((_, position) => sides[(position + index) % sides.length]);
    for (const { name, side } of order) {
      const answer = await side.request({ op: 'predict', files, batch });
      seconds[name].push(answer.seconds);
      last[name] = answer;
    }
    console.log(`targets round ${index + 1}/${rounds}: ` +
      sides.map(({ name }) => `${name} ${seconds[name].at(-1).toFixed(2)} s`).join(', '));
  }

  // Ratios per round (same machine state), then their median.
  const ratio = (numerator, denominator) =>
    round(median(seconds[numerator].map((value, at) => value / seconds[denominator][at])), 3);
  const agreement = (a, b) => {
    const [x, y] = [top1(last[a].probabilities), top1(last[b].probabilities)];
    return round(x.filter((value, at) => value === y[at]).length / x.length, 4);
  };
  writeResults('targets', {
    benchmark: 'predict from video files in fp32 and bf16, ours and the reference',
    workload: { clips: files.length, frames: fixture.predict.frames, frameSize: fixture.frameSize,
      hiddenSize: fixture.hiddenSize, batch, sampling: 'every frame (8 fps files)' },
    blas: { OPENBLAS_CORETYPE: blasCore, note: 'all four sides run with this OPENBLAS_CORETYPE' },
    rounds,
    seconds: Object.fromEntries(Object.entries(seconds).map(([name, values]) => [name, values.map((v) => round(v, 3))])),
    clipsPerSecond: Object.fromEntries(Object.entries(seconds).map(([name, values]) => [name, round(files.length / median(values), 3)])),
    ratios: {
      oursFp32OverSeedFp32: ratio('reference fp32', 'ours fp32'),
      oursBf16OverSeedFp32: ratio('reference fp32', 'ours bf16'),
      oursBf16OverAutocast: ratio('reference bf16 autocast', 'ours bf16'),
      oursBf16OverOursFp32: ratio('ours fp32', 'ours bf16'),
      autocastOverSeedFp32: ratio('reference fp32', 'reference bf16 autocast'),
    },
    top1Agreement: {
      note: `on the ${files.length} bench clips (random-weight model: small margins); the trained held-out agreement is precision.mjs's`,
      oursBf16WithOursFp32: agreement('ours bf16', 'ours fp32'),
      autocastWithReferenceFp32: agreement('reference bf16 autocast', 'reference fp32'),
    },
    maxProbabilityDifference: {
      oursFp32VsReferenceFp32: round(maxRowDifference(last['ours fp32'].probabilities, last['reference fp32'].probabilities), 8),
      oursBf16VsOursFp32: round(maxRowDifference(last['ours bf16'].probabilities, last['ours fp32'].probabilities), 8),
    },
    settings,
    machine: { ...machine(), loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  for (const { side } of sides) await side.close();
}
