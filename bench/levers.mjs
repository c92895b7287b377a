// Each performance lever measured on its own: our predict (the fixture's clips, batch 8) in worker
// processes that differ in one setting only, rounds alternating the order. A lever pays when its
// median ratio to the baseline, taken round by round, is clearly above 1.
//   node bench/levers.mjs --work FOLDER [--rounds 2] [--clips 32] [--only NAME,...] [--precision fp32|bf16] [--blas-core CORE] [--out FILE]
import { backendInfo } from '../dist/index.js';
import { argument, loadAverage, machine, median, readFixture, round, startOurs, writeResults } from './common.mjs';

const rounds = argument('rounds', 2);
const blasCore = argument('blas-core', null);
const precision = argument('precision', 'fp32');
const fixture = readFixture();
const files = fixture.predict.files.slice(0, argument('clips', fixture.predict.files.length));
const base = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};
// The baseline is the library's defaults; every other variant switches one lever off (or tries one
// that did not become a default), through src/tuning.ts or the environment.
const variants = {
  'baseline (defaults)': {},
  'OpenMP threads sleeping at once at barriers (OMP_WAIT_POLICY=PASSIVE)': { OMP_WAIT_POLICY: 'PASSIVE' },
  'convolutions through oneDNN only, no Winograd (winogradConvolutions=0)': { VIDEO_RNN_TUNING: 'winogradConvolutions=0' },
  "Winograd products kernel forced to AVX2's 8 lanes (winogradKernel=avx2)": { VIDEO_RNN_TUNING: 'winogradKernel=avx2' },
  'Winograd products kernel forced to the portable baseline (winogradKernel=baseline)': { VIDEO_RNN_TUNING: 'winogradKernel=baseline' },
  'convolutions through the dense path, weights reordered every call (prepackedConvolutions=0)': { VIDEO_RNN_TUNING: 'prepackedConvolutions=0' },
  'tensors in 4 KiB pages (hugePages=0)': { VIDEO_RNN_TUNING: 'hugePages=0' },
  'ffmpeg started from this process, not the helper (launcher=0)': { VIDEO_RNN_TUNING: 'launcher=0' },
  'ffmpeg at nice 10 (decodeNice=10)': { VIDEO_RNN_TUNING: 'decodeNice=10' },
  "ffmpeg's own thread count (ffmpegThreads=0)": { VIDEO_RNN_TUNING: 'ffmpegThreads=0' },
  'CNN chunks of 8 frames (chunkFrames=8)': { VIDEO_RNN_TUNING: 'chunkFrames=8' },
  'one ffmpeg process per video (decodeGroup=1)': { VIDEO_RNN_TUNING: 'decodeGroup=1' },
  'fc6 after the average pool, not folded with it (pooledFc6=0)': { VIDEO_RNN_TUNING: 'pooledFc6=0' },
};
const only = argument('only', null);
// A Winograd kernel this CPU lacks cannot be forced (E_INVALID_ARGUMENT): left out, and said so.
const kernels = backendInfo().winogradKernels;
const runnable = ([name, env]) => {
  const forced = /winogradKernel=(\w+)/.exec(env.VIDEO_RNN_TUNING ?? '');
  if (forced && !kernels.includes(forced[1])) console.log(`levers: ${name} left out, this CPU runs ${kernels.join(', ')}`);
  return !forced || kernels.includes(forced[1]);
};
const chosen = Object.entries(variants).filter(([name], index) => index === 0 || !only || only.split(',').some((part) => name.includes(part)))
  .filter(runnable);

const loadBefore = loadAverage();
const sides = [];
try {
  for (const [name, env] of chosen) {
    const side = await startOurs({ env: { ...base, ...env }, name });
    sides.push({ name, side });
    await side.request({ op: 'load', checkpoint: fixture.checkpoint, precision });
    await side.request({ op: 'predict', files: files.slice(0, 2), batch: 8 });  // warm: oneDNN kernels built
  }
  const seconds = Object.fromEntries(sides.map(({ name }) => [name, []]));
  const eventLoopMax = Object.fromEntries(sides.map(({ name }) => [name, []]));
  for (let index = 0; index < rounds; index += 1) {
    const order = sides.map((_, position) => sides[(position + index) % sides.length]);
    for (const { name, side } of order) {
      const answer = await side.request({ op: 'predict', files, batch: 8 });
      seconds[name].push(answer.seconds);
      eventLoopMax[name].push(answer.eventLoop.max);
      console.log(`levers round ${index + 1}/${rounds}: ${name} ${answer.seconds.toFixed(2)} s`);
    }
  }
  // The convolutions' own time per frame in each variant (the engine's phase timer), one predict more.
  const convolutionMs = {};
  for (const { name, side } of sides) {
    const profile = await side.request({ op: 'profile', files, batch: 8 });
    convolutionMs[name] = profile.phaseMs.convolutions / profile.framesEmbedded;
    console.log(`levers: ${name} convolutions ${convolutionMs[name].toFixed(2)} ms per frame`);
  }
  const baseline = seconds[sides[0].name];
  writeResults('levers', {
    benchmark: 'one lever at a time: our predict with one setting changed',
    workload: { clips: files.length, frameSize: fixture.frameSize, batch: 8, precision },
    rounds,
    variants: Object.fromEntries(sides.map(({ name }) => [name, {
      medianSeconds: round(median(seconds[name]), 3),
      roundsSeconds: seconds[name].map((value) => round(value, 3)),
      speedOverBaseline: round(median(seconds[name].map((value, at) => baseline[at] / value)), 3),
      eventLoopMaxMs: round(Math.max(...eventLoopMax[name]), 1),
      convolutionMsPerFrame: round(convolutionMs[name], 2),
      settings: variants[name],
    }])),
    blas: { OPENBLAS_CORETYPE: blasCore },
    winogradKernels: kernels,
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  for (const { side } of sides) await side.close();
}
