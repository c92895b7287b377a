// Decode throughput: a 10 s 640x360 H.264 video decoded at fps 4, size 224 (40 frames per decode),
// with one and with two decodes in flight. Writes bench/results/decode.json.
//   node bench/decode.mjs [--rounds 5] [--decodes 8]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeConcurrency, decodeVideo, locateFfmpeg, probeVideo } from '../dist/video/index.js';

const argument = (name, fallback) => {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
};
const rounds = argument('rounds', 5);
const decodesPerRound = argument('decodes', 8);
const options = { fps: 4, size: 224 };

const { ffmpeg } = locateFfmpeg();
const workFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-bench-'));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

try {
  const source = path.join(workFolder, 'source.mp4');
  execFileSync(ffmpeg, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i',
    'testsrc2=s=640x360:r=30:d=10', '-c:v', 'libx264', '-preset', 'medium', '-pix_fmt', 'yuv420p', source]);
  // Separate copies so that every decode pays for its probe, as the first epoch over a dataset does.
  const copies = Array.from({ length: rounds * decodesPerRound * 2 + 1 }, (_, index) => {
    const copy = path.join(workFolder, `copy-${index}.mp4`);
    fs.copyFileSync(source, copy);
    return copy;
  });
  const info = await probeVideo(source);
  await decodeVideo(copies.pop(), options); // start-up costs (fluent-ffmpeg's capability queries) stay out of the timings

  // Rounds alternate between the two settings so that a change in machine load hits both alike.
  const throughputs = { 1: [], 2: [] };
  const loadBefore = os.loadavg()[0];
  for (let round = 0; round < rounds; round += 1) {
    for (const concurrency of [1, 2]) {
      decodeConcurrency(concurrency);
      const files = copies.splice(0, decodesPerRound);
      const started = process.hrtime.bigint();
      const clips = await Promise.all(files.map((file) => decodeVideo(file, options)));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const frames = clips.reduce((sum, clip) => sum + clip.frames, 0);
      if (clips.some((clip) => clip.frames !== 40 || clip.width !== 224)) throw new Error('unexpected clip shape');
      throughputs[concurrency].push(frames / seconds);
    }
  }
  const results = {};
  for (const concurrency of [1, 2]) {
    results[`concurrency${concurrency}`] = {
      framesPerSecond: Number(median(throughputs[concurrency]).toFixed(1)),
      decodesPerSecond: Number((median(throughputs[concurrency]) / 40).toFixed(2)),
      roundsFramesPerSecond: throughputs[concurrency].map((value) => Number(value.toFixed(1))),
    };
  }

  const report = {
    benchmark: 'decodeVideo throughput',
    video: { width: info.width, height: info.height, fps: info.fps, duration: info.duration, frames: info.frames,
      codec: 'h264 (libx264 medium, yuv420p), testsrc2 pattern' },
    options,
    framesPerDecode: 40,
    decodesPerRound,
    rounds,
    results,
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.availableParallelism(),
      node: process.version,
      ffmpeg: execFileSync(ffmpeg, ['-version'], { encoding: 'utf8' }).split('\n')[0],
      platform: `${os.platform()} ${os.release()}`,
      // Other work on the machine skews the numbers; the one-minute load average tells how much.
      loadAverageBefore: Number(loadBefore.toFixed(2)),
      loadAverageAfter: Number(os.loadavg()[0].toFixed(2)),
    },
    date: new Date().toISOString(),
  };
  const output = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'decode.json');
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(output, JSON.stringify(report, null, 2) + '\n');
  console.log(JSON.stringify(report.results, null, 2));
  console.log(`written to ${output}`);
} finally {
  fs.rmSync(workFolder, { recursive: true, force: true });
}
