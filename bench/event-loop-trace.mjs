// What stalls the event loop during a predict and a 2-epoch training run: a 1 ms interval timer
// records every gap above 20 ms, beside the synchronous duration of each child-process spawn
// (ChildProcess.prototype.spawn, which fluent-ffmpeg's spawn() calls) and each garbage collection.
//   node bench/event-loop-trace.mjs --work FOLDER [--out FILE]
import { ChildProcess } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { VideoRNN } from '../dist/index.js';
import { loadAverage, machine, median, readFixture, round, writeResults } from './common.mjs';

const fixture = readFixture();
const events = [];
const spawn = ChildProcess.prototype.spawn;
ChildProcess.prototype.spawn = function timedSpawn(options) {
  const started = performance.now();
  const result = spawn.call(this, options);
  events.push({ at: started, kind: `spawn ${options.file.split('/').pop()}`, ms: performance.now() - started });
  return result;
};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) events.push({ at: entry.startTime, kind: 'gc', ms: entry.duration });
}).observe({ entryTypes: ['gc'] });

/** Runs `work` with the gap timer on; returns the gaps with the events inside each. */
async function traced(work) {
  events.length = 0;
  const gaps = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last > 20) gaps.push({ at: last, ms: now - last });
    last = now;
  }, 1);
  await work();
  clearInterval(timer);
  const spawns = events.filter((event) => event.kind.startsWith('spawn')).map((event) => event.ms);
  const explained = (gap) => events.filter((event) => event.at >= gap.at - 1 && event.at <= gap.at + gap.ms);
  const largest = gaps.sort((a, b) => b.ms - a.ms).slice(0, 10).map((gap) => ({ ms: round(gap.ms, 1),
    during: explained(gap).map((event) => `${event.kind} ${event.ms.toFixed(1)} ms`) }));
  const over50 = gaps.filter((gap) => gap.ms > 50);
  return {
    spawns: { count: spawns.length, medianMs: round(median(spawns), 1), maxMs: round(Math.max(...spawns), 1) },
    gcMaxMs: round(Math.max(0, ...events.filter((event) => event.kind === 'gc').map((event) => event.ms)), 1),
    gapsOver50Ms: over50.length,
    gapsOver50MsWithASpawn: over50.filter((gap) => explained(gap).some((event) => event.kind.startsWith('spawn'))).length,
    largestGaps: largest,
  };
}

const loadBefore = loadAverage();
process.removeAllListeners('warning');
const model = await VideoRNN.load(fixture.checkpoint);
try {
  await model.predict(fixture.predict.files.slice(0, 2));
  const predicting = await traced(() => model.predict(fixture.predict.files, { batchSize: 8 }));
  const samples = fixture.train.files.slice(0, 16).map((source, index) => ({ id: fixture.train.ids[index], label: fixture.train.labels[index], source }));
  const training = await traced(() => model.train({ classes: model.classes, size: samples.length, sample: (index) => samples[index] },
    { epochs: 2, batchSize: 8, shuffle: false }));
  writeResults('event-loop-trace', { benchmark: 'what stalls the event loop', predicting, training,
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() }, date: new Date().toISOString() });
} finally {
  model.dispose();
}
