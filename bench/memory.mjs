// (7) memory: resident size after 30 and after 300 repeated predicts, each on one video file (decoded
// by ffmpeg) and one in-memory Clip, 8 frames of 32 px each, so that every path a predict takes
// (spawn, frame buffers, native batch, result objects) repeats. The peak RSS of a 32-clip predict
// is measured by bench/predict.mjs. Run with --expose-gc so that the JS heap is settled before each reading.
//   node --expose-gc bench/memory.mjs --work FOLDER [--predicts 300] [--early 30] [--out FILE]
import fs from 'node:fs';
import { VideoRNN, decodeVideo } from '../dist/index.js';
import { argument, loadAverage, machine, readFixture, round, writeResults } from './common.mjs';

const total = argument('predicts', 300);
const early = argument('early', 30);
const fixture = readFixture();
const { files, classes, frameSize } = fixture.tiny;

function residentMB() {
  global.gc?.();
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(match[1]) / 1024;
}

const loadBefore = loadAverage();
process.removeAllListeners('warning');
const model = await VideoRNN.create({ classes, hiddenSize: fixture.hiddenSize, frameSize, seed: 3 });
const clip = await decodeVideo(files[1], { size: frameSize });
const readings = [{ predicts: 0, rssMB: round(residentMB(), 1) }];
const started = performance.now();
try {
  for (let count = 1; count <= total; count += 1) {
    const predictions = await model.predict([files[count % files.length], clip]);
    if (predictions.length !== 2) throw new Error('predict returned the wrong number of rows');
    if (count === early || count % 50 === 0 || count === total) readings.push({ predicts: count, rssMB: round(residentMB(), 1) });
  }
} finally {
  model.dispose();
}
const rssAt = (count) => readings.find((reading) => reading.predicts === count).rssMB;
const growth = (rssAt(total) - rssAt(early)) / rssAt(early);
console.log(`memory: RSS ${rssAt(early)} MB after ${early} predicts, ${rssAt(total)} MB after ${total} (${(growth * 100).toFixed(2)} %)`);
writeResults('memory', {
  benchmark: 'resident memory over repeated predicts',
  workload: { perPredict: 'one 8-frame video file at 32 px (decoded) + one 8-frame in-memory Clip', hiddenSize: fixture.hiddenSize,
    gcBeforeReadings: typeof global.gc === 'function' },
  rssAfterEarlyMB: rssAt(early),
  rssAfterAllMB: rssAt(total),
  early,
  predicts: total,
  growthPercent: round(growth * 100, 2),
  readings,
  seconds: round((performance.now() - started) / 1000, 1),
  machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
  date: new Date().toISOString(),
});
