// Each performance lever measured on its own: our predict (the fixture's clips, batch 8) in worker
// processes that differ in one setting only, rounds alternating the order. A lever pays when its
// median ratio to the baseline, taken round by round, is clearly above 1.
//   node bench/levers.mjs --work FOLDER [--rounds 2] [--clips 32] [--only NAME,...] [--blas-core CORE] [--out FILE]
import { argument, loadAverage, machine, median, readFixture, round, startOurs, writeResults } from './common.mjs';

const rounds = argument('rounds', 2);
const blasCore = argument('blas-core', null);
const fixture = readFixture();
const files = fixture.predict.files.slice(0, argument('clips', fixture.predict.files.length));
const base = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};
// The baseline is the library's defaults; every other variant switches one lever off (or tries one
// that did not become a default), through src/tuning.ts or the environment.
const variants = {
  'baseline (defaults)': {},
  'OpenMP threads sleeping at once at barriers (OMP_WAIT_POLICY=PASSIVE)': { OMP_WAIT_POLICY: 'PASSIVE' },
  'convolutions through oneDNN only, no Winograd (winogradConvolutions=0)': { VIDEO_RNN_TUNING: 'winogradConvolutions=0' },
  'convolutions through the dense path, weights reordered every call (prepackedConvolutions=0)': { VIDEO_RNN_TUNING: 'prepackedConvolutions=0' },
  'tensors in 4 KiB pages (hugePages=0)': { VIDEO_RNN_TUNING: 'hugePages=0' },
  'ffmpeg started from this process, not the helper (launcher=0)': { VIDEO_RNN_TUNING: 'launcher=0' },
  'ffmpeg at nice 10 (decodeNice=10)': { VIDEO_RNN_TUNING: 'decodeNice=10' },
  "ffmpeg's own thread count (ffmpegThreads=0)": { VIDEO_RNN_TUNING: 'ffmpegThreads=0' },
  'CNN chunks of 8 frames (chunkFrames=8)': { VIDEO_RNN_TUNING: 'chunkFrames=8' },
};
const only = argument('only', null);
const chosen = Object.entries(variants).filter(([name], index) => index === 0 || !only || only.split(',').some((part) => name.includes(part)));

const loadBefore = loadAverage();
const sides = [];
try {
  for (const [name, env] of chosen) {
    const side = await startOurs({ env: { ...base, ...env }, name });
    sides.push({ name, side });
    await side.request({ op: 'load', checkpoint: fixture.checkpoint });
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
  const baseline = seconds[sides[0].name];
  writeResults('levers', {
    benchmark: 'one lever at a time: our predict with one setting changed',
    workload: { clips: files.length, frameSize: fixture.frameSize, batch: 8 },
    rounds,
    variants: Object.fromEntries(sides.map(({ name }) => [name, {
      medianSeconds: round(median(seconds[name]), 3),
      roundsSeconds: seconds[name].map((value) => round(value, 3)),
      speedOverBaseline: round(median(seconds[name].map((value, at) => baseline[at] / value)), 3),
      eventLoopMaxMs: round(Math.max(...eventLoopMax[name]), 1),
      settings: variants[name],
    }])),
    blas: { OPENBLAS_CORETYPE: blasCore },
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  for (const { side } of sides) await side.close();
}
