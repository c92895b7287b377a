// Our side of the benchmarks, in its own process: bench/common.mjs's startOurs() forks it and sends
// one request at a time over IPC. Timings, event-loop delay and peak memory are taken here, around
// the work only, so the parent's own activity never counts.
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { VideoRNN, decodeVideo, setFfmpegPath } from '../dist/index.js';
import { clearProbeCache } from '../dist/video/probe.js';
import { addon } from '../dist/native.js';
import { loadCheckpointTensors, withCheckpoint } from '../dist/checkpoint.js';
import { childrenCpuSeconds, statSeconds } from './process-cpu.mjs';

let model;
let checkpoint;
let loadOptions = {};

/** Linux keeps the peak resident size (VmHWM); writing 5 to clear_refs restarts it from now. */
function resetPeakMemory() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function statusKilobytes(field) {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : null;
}

const mainThreadCpuSeconds = () => statSeconds(`/proc/self/task/${process.pid}/stat`, false);

// The histogram records the whole interval between its timer's runs, resolution included: a small
// resolution keeps its own share small, and delays() takes it off again.
const resolutionMs = 1;

/** p50, p99 and max of the event loop's delay while `work` runs, in milliseconds. */
async function watchingEventLoop(work) {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  try {
    const result = await work();
    return { result, eventLoop: histogram };
  } finally {
    histogram.disable();
  }
}

function delays(histogram) {
  const delay = (nanoseconds) => Math.max(0, nanoseconds / 1e6 - resolutionMs);
  return { p50: delay(histogram.percentile(50)), p99: delay(histogram.percentile(99)), max: delay(histogram.max),
    samples: histogram.count };
}

async function timed(work) {
  const started = performance.now();
  const result = await work();
  return { seconds: (performance.now() - started) / 1000, result };
}

/** Samples in the given order; shuffle stays off so that the reference can use the same batches. */
function orderedDataset(classes, samples) {
  return { classes, size: samples.length, sample: (index) => samples[index] };
}

async function freshModel() {
  model?.dispose();
  model = await VideoRNN.load(checkpoint, loadOptions);
  return model;
}

/** handlers.train's work once the model, the probe cache and the binaries are set; `decodeOnly` stops after decoding. */
async function trainFrom(request) {
  const classes = model.classes;
  let decodeSeconds = null;
  let decodeCpuSeconds = null;
  let sources = request.files;
  const cpuBefore = childrenCpuSeconds();
  if (request.source === 'clips') {
    const decoding = await timed(async () => {
      const clips = [];
      // Batch by batch with the default decode concurrency: the decoding that training overlaps.
      for (let first = 0; first < request.files.length; first += request.batch) {
        clips.push(...await Promise.all(request.files.slice(first, first + request.batch)
          .map((file) => decodeVideo(file, { size: model.config.frameSize, ...model.config.sampling }))));
      }
      return clips;
    });
    decodeSeconds = decoding.seconds;
    decodeCpuSeconds = childrenCpuSeconds() - cpuBefore;
    sources = decoding.result;
    if (request.decodeOnly) return { decodeSeconds, decodeCpuSeconds };
  }
  const samples = sources.map((source, index) => ({ id: request.ids[index], label: request.labels[index], source }));
  const { result: report, eventLoop } = await watchingEventLoop(() => model.train(orderedDataset(classes, samples), {
    epochs: request.epochs, batchSize: request.batch, learningRate: request.learningRate, optimizer: 'adam',
    shuffle: false, cacheEmbeddings: true,
  }));
  return { epochs: report.epochs.map((epoch) => ({ seconds: epoch.seconds, loss: epoch.loss })), decodeSeconds, decodeCpuSeconds,
    eventLoop: delays(eventLoop), framesEmbedded: model.stats.framesEmbedded, cacheHits: model.stats.embeddingCacheHits };
}

const handlers = {
  async load(request) {
    checkpoint = request.checkpoint;
    loadOptions = { device: request.device ?? 'cpu', precision: request.precision ?? 'fp32' };
    if (request.threads) loadOptions.threads = request.threads;
    await freshModel();
    return { device: model.device, info: addon().backendInfo(), openblasThreads: process.env.OPENBLAS_NUM_THREADS ?? null,
      openblasCore: process.env.OPENBLAS_CORETYPE ?? null };
  },

  async predict(request) {
    const peakReset = resetPeakMemory();
    const rssBefore = statusKilobytes('VmRSS');
    const { result: timing, eventLoop } = await watchingEventLoop(() => timed(() => model.predict(request.files, { batchSize: request.batch })));
    return { seconds: timing.seconds, probabilities: timing.result.map((p) => model.classes.map((label) => p.probabilities[label])),
      eventLoop: delays(eventLoop), rssBeforeMB: rssBefore / 1024,
      peakRssMB: peakReset ? statusKilobytes('VmHWM') / 1024 : null };
  },

  /**
   * One predict over the files, taken apart: the native phases (the engine's own timers), each
   * native call as JavaScript sees it (its synchronous part is the argument conversion; the rest
   * beyond the engine's own time is queueing and the result's conversion), the gaps between calls
   * (waiting for decoding, JavaScript), the CPU time of the ffmpeg and ffprobe children, and of the
   * main thread.
   */
  async profile(request) {
    // The model's native handle is a private field in TypeScript only; wrapping its predict here
    // changes nothing the library does.
    const native = model.native;
    const original = native.predict;
    const calls = [];
    // The method lives on the prototype, read-only: shadow it with an own property, deleted after.
    Object.defineProperty(native, 'predict', { configurable: true, writable: true, value: function timedPredict(clips) {
      const started = performance.now();
      const promise = original.call(native, clips);
      const returned = performance.now();
      return promise.then((result) => {
        calls.push({ started, synchronousMs: returned - started, endedMs: performance.now(), frames: clips.reduce((sum, clip) => sum + clip.frames, 0) });
        return result;
      });
    } });
    const before = native.counters();
    const cpuBefore = { children: childrenCpuSeconds(), main: mainThreadCpuSeconds() };
    const started = performance.now();
    try {
      await model.predict(request.files, { batchSize: request.batch });
    } finally {
      delete native.predict;
    }
    const wallMs = performance.now() - started;
    const after = native.counters();
    const phaseMs = Object.fromEntries(Object.keys(after.phaseMs).map((key) => [key, after.phaseMs[key] - before.phaseMs[key]]));
    let previousEnd = started;
    const gapsMs = calls.map((call) => {
      const gap = call.started - previousEnd;
      previousEnd = call.endedMs;
      return gap;
    });
    return {
      wallMs, phaseMs, engineCalls: after.calls - before.calls, framesEmbedded: after.framesEmbedded - before.framesEmbedded,
      calls: calls.map((call) => ({ synchronousMs: call.synchronousMs, totalMs: call.endedMs - call.started, frames: call.frames })),
      gapsMs, tailMs: performance.now() - previousEnd,
      childrenCpuSeconds: childrenCpuSeconds() - cpuBefore.children,
      mainThreadCpuSeconds: mainThreadCpuSeconds() - cpuBefore.main,
    };
  },

  /** fc7 of every frame of each file, flattened per file, with the seconds it took. */
  async embed(request) {
    const { seconds, result } = await timed(() => model.embed(request.files));
    return { seconds, embeddings: result.map((rows) => Array.from(rows)) };
  },

  /** Decoding alone, batch by batch as predict does (the default concurrency), with the children's CPU time. */
  async decodeOnly(request) {
    const cpuBefore = childrenCpuSeconds();
    const { seconds } = await timed(async () => {
      for (let first = 0; first < request.files.length; first += request.batch) {
        await Promise.all(request.files.slice(first, first + request.batch)
          .map((file) => decodeVideo(file, { size: model.config.frameSize, ...model.config.sampling })));
      }
    });
    return { seconds, childrenCpuSeconds: childrenCpuSeconds() - cpuBefore };
  },

  /** Training from a freshly loaded model: epochs over files, or decode everything first and train on Clips. */
  async train(request) {
    await freshModel();
    // Epoch 1 as in a new process: every file is probed again. `binaries` picks another ffmpeg/ffprobe pair.
    clearProbeCache();
    setFfmpegPath({ ffmpeg: request.binaries?.ffmpeg ?? null, ffprobe: request.binaries?.ffprobe ?? null });
    try {
      return await trainFrom(request);
    } finally {
      setFfmpegPath({ ffmpeg: null, ffprobe: null });
    }
  },

  /**
   * VGG16 alone, through the native embed call (uint8 frames in, fc7 out, normalisation included),
   * on a native model built with the memory format asked for; weights from the checkpoint.
   */
  async backbone(request) {
    const key = `${request.channelsLast}/${request.precision ?? 'fp32'}`;
    handlers.backbones ??= new Map();
    if (!handlers.backbones.has(key)) {
      const native = await withCheckpoint(checkpoint, async (index, file) => {
        const { config } = index;
        const created = await addon().createModel({ classes: config.classes.length, hiddenSize: config.hiddenSize,
          numLayers: config.numLayers, bidirectional: config.bidirectional, headSize: config.headSize,
          device: loadOptions.device, precision: request.precision ?? 'fp32', channelsLast: request.channelsLast, threads: loadOptions.threads ?? 0 });
        await loadCheckpointTensors(checkpoint, index, file, created);
        return created;
      });
      handlers.backbones.set(key, native);
    }
    const native = handlers.backbones.get(key);
    const size = request.size;
    const data = new Uint8Array(fs.readFileSync(request.frames).buffer, 0, request.count * size * size * 3);
    const clip = { data, frames: request.count, height: size, width: size };
    const { seconds, result } = await timed(() => native.embed([clip]));
    if (request.output) fs.writeFileSync(request.output, Buffer.from(result[0].buffer, result[0].byteOffset, result[0].byteLength));
    return { seconds, frames: request.count };
  },

  /** Frames the CNN sees for one batch of clips of the given lengths, and how long predict took. */
  async packed(request) {
    const size = request.size;
    const all = fs.readFileSync(request.frames);
    let offset = 0;
    const clips = request.lengths.map((frames) => {
      const bytes = frames * size * size * 3;
      const clip = { data: new Uint8Array(all.buffer, all.byteOffset + offset, bytes), frames, height: size, width: size };
      offset += bytes;
      return clip;
    });
    const before = model.stats.framesEmbedded;
    const { seconds } = await timed(() => model.predict(clips, { batchSize: clips.length }));
    return { seconds, framesEmbedded: model.stats.framesEmbedded - before };
  },
};

process.on('message', async (request) => {
  if (request.op === 'quit') {
    model?.dispose();
    process.disconnect();
    return;
  }
  try {
    process.send(await handlers[request.op](request));
  } catch (error) {
    process.send({ error: `${error.code ?? error.name}: ${error.message}` });
  }
});
process.send({ ready: true });
