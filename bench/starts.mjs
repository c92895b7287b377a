// Process starts per clip: the CPU time of one ffprobe and one ffmpeg start on this machine, and
// decoding's CPU time per clip (core-seconds: ffmpeg, ffprobe and the helper process that starts
// them) over short clips, each file decoded once, as in a first epoch. Writes
// bench/results/starts.json (or the file named by --out).
//   node bench/starts.mjs [--clips 48] [--frames 3] [--size 64] [--rounds 3] [--container mp4|mkv|webm|avi] [--out file]
// Containers: H.264 in MP4 or Matroska, VP8 in WebM, MPEG-4 part 2 in AVI.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeVideo, locateFfmpeg } from '../dist/video/index.js';
import { childrenCpuSeconds, statSeconds } from './process-cpu.mjs';

const argument = (name, fallback) => {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : fallback;
};
const clips = Number(argument('clips', 48));
const frames = Number(argument('frames', 3));
const size = Number(argument('size', 64));
const rounds = Number(argument('rounds', 3));
const container = argument('container', 'mp4');
const codecs = {
  mp4: ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'], mkv: ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'],
  webm: ['-c:v', 'libvpx', '-b:v', '200k'], avi: ['-c:v', 'mpeg4', '-q:v', '2'],
};
if (!(container in codecs)) throw new Error(`--container: one of ${Object.keys(codecs).join(', ')}`);
const here = path.dirname(fileURLToPath(import.meta.url));
const out = argument('out', path.join(here, 'results', 'starts.json'));

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const { ffmpeg, ffprobe } = locateFfmpeg();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-starts-'));
try {
  const source = path.join(work, `source.${container}`);
  execFileSync(ffmpeg, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i',
    `testsrc2=s=${size}x${size}:r=8:d=${frames / 8}`, ...codecs[container], source]);

  // One start of each binary, run directly (no helper process), n times: CPU from the kernel's
  // accounting of waited-for children.
  const perStart = (binary, args, n = 20) => {
    const before = statSeconds('/proc/self/stat', true);
    for (let i = 0; i < n; i += 1) {
      const result = spawnSync(binary, args, { stdio: 'ignore' });
      if (result.status !== 0) throw new Error(`${binary} failed`);
    }
    return (statSeconds('/proc/self/stat', true) - before) / n;
  };
  const ffprobeStart = perStart(ffprobe, ['-v', 'error', '-show_format', '-show_streams', '-print_format', 'json', source]);
  const ffmpegDecode = perStart(ffmpeg, ['-nostdin', '-v', 'error', '-i', source, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-y', '/dev/null']);
  const ffmpegVersion = perStart(ffmpeg, ['-version']);

  const copies = Array.from({ length: clips * rounds + 1 }, (_, index) => {
    const copy = path.join(work, `clip-${index}.${container}`);
    fs.copyFileSync(source, copy);
    return copy;
  });
  const options = { size, maxFrames: 16 };
  await decodeVideo(copies.pop(), options); // the helper process and fluent-ffmpeg's first queries stay out
  const perClip = [];
  const ownPerClip = [];
  const wall = [];
  for (let round = 0; round < rounds; round += 1) {
    const files = copies.splice(0, clips);
    const cpuBefore = childrenCpuSeconds();
    const ownBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    await Promise.all(files.map((file) => decodeVideo(file, options)));
    wall.push(Number(process.hrtime.bigint() - started) / 1e9);
    perClip.push((childrenCpuSeconds() - cpuBefore) / clips);
    const own = process.cpuUsage(ownBefore);
    ownPerClip.push((own.user + own.system) / 1e6 / clips);
  }
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), loadavg: os.loadavg()[0] },
    ffmpeg: execFileSync(ffmpeg, ['-version']).toString().split('\n')[0],
    workload: { clips, frames, size, container, options },
    tuning: process.env.VIDEO_RNN_TUNING ?? '',
    perStartCpuSeconds: {
      ffprobe: Number(ffprobeStart.toFixed(4)),
      ffmpegDecodeOfOneClip: Number(ffmpegDecode.toFixed(4)),
      ffmpegVersionOnly: Number(ffmpegVersion.toFixed(4)),
    },
    decodeCpuSecondsPerClip: { median: Number(median(perClip).toFixed(4)), rounds: perClip.map((v) => Number(v.toFixed(4))) },
    // This process's own CPU (reading container indexes, receiving frames, the promises): not in the above.
    callerCpuSecondsPerClip: { median: Number(median(ownPerClip).toFixed(4)), rounds: ownPerClip.map((v) => Number(v.toFixed(4))) },
    wallSecondsPerRound: wall.map((v) => Number(v.toFixed(3))),
  };
  console.log(JSON.stringify(result, null, 2));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
