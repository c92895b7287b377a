// `video-rnn serve` under load, on loopback only, with bounded counts and durations:
//  - clips/s and p50/p99 latency at 1, 4, 16 and 64 concurrent clients, dynamic batching on
//    (--max-batch-clips 8) against off (--max-batch-clips 1), cells alternating in one run;
//  - errors at in-capacity load (must be 0), and 503s only beyond the queue limit;
//  - the server's RSS at the start and end of a soak at 16 clients.
//   node bench/serve.mjs [--duration-s 10] [--levels 1,4,16,64] [--soak-s 300] [--soak-only] [--device cpu]
//        [--frame-size 64] [--frames 8] [--hidden 128] [--out FILE]
// Each server is `node dist/cli.js serve` in its own process; this process is only the client
// (Node's fetch, one request per client at a time, each a raw MP4 upload).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argument, flag, loadAverage, machine, median, repositoryRoot, round, writeResults } from './common.mjs';

const { PredictionService, VideoRNN, decodeVideo, makeSyntheticDataset } = await import(path.join(repositoryRoot, 'dist', 'index.js'));

const durationSeconds = argument('duration-s', 10);
const levels = argument('levels', '1,4,16,64').split(',').map(Number);
const soakSeconds = argument('soak-s', 300);
const device = argument('device', 'cpu');
const frameSize = argument('frame-size', 64);
const frames = argument('frames', 8);
const hiddenSize = argument('hidden', 128);
// Bounds, whatever the arguments say: nothing here may run away on a shared machine.
if (!(durationSeconds > 0 && durationSeconds <= 120)) throw new Error('--duration-s must be in (0, 120]');
if (!(soakSeconds >= 0 && soakSeconds <= 900)) throw new Error('--soak-s must be in [0, 900]');
if (levels.some((level) => !(level >= 1 && level <= 256))) throw new Error('--levels must be between 1 and 256');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-bench-serve-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

async function fixture() {
  const dataset = await makeSyntheticDataset(path.join(work, 'clips'),
    { classes: ['left', 'right'], perClass: 8, size: frameSize, minFrames: frames, maxFrames: frames, seed: 1 });
  const model = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize, headSize: 64, frameSize, seed: 1, device });
  const modelFile = path.join(work, 'model.safetensors');
  await model.save(modelFile);
  model.dispose();
  const bodies = Array.from({ length: dataset.size }, (_, index) => fs.readFileSync(dataset.sample(index).source));
  const clips = [];
  for (let index = 0; index < dataset.size; index += 1) clips.push(await decodeVideo(dataset.sample(index).source, { size: frameSize }));
  return { modelFile, bodies, clips };
}

/** Starts `video-rnn serve` on a free loopback port; resolves with its URL and process. */
function startServer(modelFile, flags) {
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'dist', 'cli.js'), 'serve', modelFile, '--port', '0',
    '--host', '127.0.0.1', '--device', device, '--log-level', 'info', ...flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (text) => {
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        const entry = JSON.parse(line);
        if (entry.msg === 'ready') resolve({ url: entry.address, child });
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before it was ready`)));
  });
}

async function stopServer(server) {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  return exited;
}

function residentMB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return round(Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) / 1024, 1);
}

/** Batches, clips and frames the server has run, from its /metrics. */
async function batchCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { batches: read('video_rnn_batch_clips_count'), clips: read('video_rnn_batch_clips_sum'),
    frames: read('video_rnn_batch_frames_sum'), modelSeconds: read('video_rnn_batch_duration_seconds_sum') };
}

/** One raw MP4 upload; resolves with the HTTP status (or the network error). */
async function upload(url, body) {
  try {
    const response = await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body });
    await response.arrayBuffer();
    return String(response.status);
  } catch (error) {
    return `network: ${error.cause?.code ?? error.message}`;
  }
}

/** `clients` loops of one request at a time for `seconds`; `send(index)` resolves with a status. */
async function drive(send, clients, seconds) {
  const latencies = [];
  const statuses = {};
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let next = 0;
  const client = async () => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      const status = await send(next++);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === '200') latencies.push(performance.now() - sent);
      // A refused request would otherwise be retried in a tight loop.
      if (status === '503') await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const percentile = (p) => (latencies.length === 0 ? null : round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))], 1));
  return { clients, seconds: round(elapsed, 2), ok: latencies.length, clipsPerSecond: round(latencies.length / elapsed, 2),
    p50Ms: percentile(0.5), p99Ms: percentile(0.99), medianMs: round(latencies.length ? median(latencies) : null, 1), statuses };
}

function load(url, bodies, clients, seconds) {
  return drive((index) => upload(url, bodies[index % bodies.length]), clients, seconds);
}

async function cell(server, bodies, clients, seconds) {
  const before = await batchCounters(server.url);
  const result = await load(server.url, bodies, clients, seconds);
  const after = await batchCounters(server.url);
  const batches = after.batches - before.batches;
  return { ...result, batches, clipsPerBatch: round((after.clips - before.clips) / batches, 2),
    framesPerBatch: round((after.frames - before.frames) / batches, 1), modelMsPerBatch: round(1000 * (after.modelSeconds - before.modelSeconds) / batches, 1),
    errors: Object.entries(result.statuses).filter(([status]) => status !== '200').reduce((sum, [, count]) => sum + count, 0) };
}

/** The service alone, in this process, on decoded Clips: what batching does to the model without HTTP or ffmpeg. */
async function serviceOnly(modelFile, clips) {
  const model = await VideoRNN.load(modelFile, { device });
  const rows = [];
  try {
    await model.predict(clips.slice(0, 8), { batchSize: 8 });
    for (const clients of levels) {
      const row = { clients };
      for (const [mode, maxBatchClips] of [['on', 8], ['off', 1]]) {
        const service = new PredictionService(model, { maxBatchClips, maxDelayMs: 5, maxQueue: 1024, timeoutMs: 600_000 });
        const result = await drive((index) => service.predict(clips[index % clips.length]).then(() => '200', (error) => error.code),
          clients, durationSeconds);
        const { batches, clips: batched, frames: batchedFrames } = service.stats;
        await service.close();
        row[mode] = { ...result, batches, clipsPerBatch: round(batched / batches, 2), framesPerBatch: round(batchedFrames / batches, 1),
          modelMsPerBatch: round(service.meanBatchMs, 1) };
      }
      row.throughputRatio = round(row.on.clipsPerSecond / row.off.clipsPerSecond, 2);
      console.log(`service: ${clients} callers: on ${row.on.clipsPerSecond} clips/s (${row.on.clipsPerBatch} clips/batch), ` +
        `off ${row.off.clipsPerSecond} clips/s, ratio ${row.throughputRatio}`);
      rows.push(row);
    }
  } finally {
    model.dispose();
  }
  return rows;
}

const loadBefore = loadAverage();
const { modelFile, bodies, clips } = await fixture();
// Timeouts long enough that a slow machine shows slow answers, not 504s: errors here must be 0.
const common = ['--max-queue', '128', '--timeout-ms', '600000'];

/** Batching on against off (the service alone, then over HTTP), and the queue limit. */
async function comparisons() {
  const service = await serviceOnly(modelFile, clips);
  const modes = {
    on: await startServer(modelFile, [...common, '--max-batch-clips', '8', '--max-delay-ms', '5']),
    off: await startServer(modelFile, [...common, '--max-batch-clips', '1']),
  };
  const table = [];
  try {
    // Warm-up: the first batches of a shape build their kernels.
    for (const server of Object.values(modes)) await load(server.url, bodies, 4, Math.min(3, durationSeconds));
    for (const [index, clients] of levels.entries()) {
      // The mode that goes first alternates, so drift in the machine's load falls on both alike.
      const order = index % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      const row = { clients };
      for (const mode of order) {
        row[mode] = await cell(modes[mode], bodies, clients, durationSeconds);
        console.log(`serve: ${clients} clients, batching ${mode}: ${row[mode].clipsPerSecond} clips/s, ` +
          `p50 ${row[mode].p50Ms} ms, p99 ${row[mode].p99Ms} ms, ${row[mode].clipsPerBatch} clips/batch, errors ${row[mode].errors}`);
      }
      row.throughputRatio = round(row.on.clipsPerSecond / row.off.clipsPerSecond, 2);
      row.p50Ratio = round(row.on.p50Ms / row.off.p50Ms, 2);
      table.push(row);
    }
  } finally {
    await Promise.all(Object.values(modes).map(stopServer));
  }

  // Beyond the queue: a limit of 8 clips, 4 clients (within it) and 32 (beyond it).
  const small = await startServer(modelFile, ['--max-queue', '8', '--timeout-ms', '600000', '--max-batch-clips', '8', '--max-delay-ms', '5']);
  const overload = {};
  try {
    for (const clients of [4, 32]) overload[`${clients} clients, --max-queue 8`] = await cell(small, bodies, clients, durationSeconds);
  } finally {
    await stopServer(small);
  }
  return { service, table, overload };
}

// --soak-only: the RSS soak alone (the comparisons take several minutes on a busy machine).
const { service, table, overload } = flag('soak-only') ? { service: [], table: [], overload: {} } : await comparisons();

let soak = null;
if (soakSeconds > 0) {
  const server = await startServer(modelFile, [...common, '--max-batch-clips', '8', '--max-delay-ms', '5']);
  try {
    await load(server.url, bodies, 16, Math.min(5, soakSeconds));
    const startMB = residentMB(server.child.pid);
    const samples = [];
    const sampler = setInterval(() => samples.push(residentMB(server.child.pid)), 10_000);
    const result = await cell(server, bodies, 16, soakSeconds);
    clearInterval(sampler);
    const endMB = residentMB(server.child.pid);
    soak = { seconds: soakSeconds, clients: 16, startMB, endMB, growthPercent: round(100 * (endMB - startMB) / startMB, 2), samplesMB: samples,
      requests: result.ok, errors: result.errors, clipsPerSecond: result.clipsPerSecond };
    console.log(`serve: soak ${soakSeconds} s at 16 clients: RSS ${startMB} -> ${endMB} MB (${soak.growthPercent}%), errors ${result.errors}`);
  } finally {
    await stopServer(server);
  }
}

writeResults('serve', {
  date: new Date().toISOString(),
  machine: machine(),
  loadAverage: { before: loadBefore, after: loadAverage() },
  settings: { device, frameSize, framesPerClip: frames, hiddenSize, durationSeconds, clips: bodies.length, soakSeconds,
    on: '--max-batch-clips 8 --max-delay-ms 5', off: '--max-batch-clips 1', queue: '--max-queue 128' },
  table,
  service,
  overload,
  soak,
});
