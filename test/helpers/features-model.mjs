// What the tests of the model over the feature store share: models made and disposed, the model's
// counters around a piece of work, warnings emitted, and the worker process (features-worker.mjs).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VideoRNN, makeSyntheticDataset } from '../../dist/index.js';

const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'features-worker.mjs');

/** The 8 short clips both files use (2 classes, 2 to 4 frames of 32 px), their paths and their frame count. */
export async function featureClips(folder, classes) {
  const data = await makeSyntheticDataset(folder, { classes, perClass: 4, size: 32, minFrames: 2, maxFrames: 4, seed: 3 });
  const files = Array.from({ length: data.size }, (_, index) => data.sample(index).source);
  return { data, files, framesTotal: data.clips.reduce((sum, clip) => sum + clip.frames, 0) };
}

export const bits = (rows) => Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
export const same = (a, b) => a.length === b.length && bits(a).equals(bits(b));

/** Runs `work` on a new model made with `options`, and disposes of it. */
export async function withNewModel(options, work) {
  const model = await VideoRNN.create(options);
  try {
    return await work(model);
  } finally {
    model.dispose();
  }
}

export function counters(model) {
  const { framesEmbedded, videosDecoded, featureStoreHits, featureStoreMisses, featureStoreWrites } = model.stats;
  return { framesEmbedded, videosDecoded, hits: featureStoreHits, misses: featureStoreMisses, writes: featureStoreWrites };
}

/** What `work` made the model do (counters before and after). */
export async function counted(model, work) {
  const start = counters(model);
  const result = await work();
  const end = counters(model);
  return { result, counts: Object.fromEntries(Object.entries(end).map(([name, value]) => [name, value - start[name]])) };
}

/** Collects the process warnings `work` emits. */
export async function warningsDuring(work) {
  const seen = [];
  const listener = (warning) => seen.push(warning);
  process.on('warning', listener);
  try {
    const result = await work();
    await new Promise((resolve) => setImmediate(resolve));
    return { result, warnings: seen };
  } finally {
    process.off('warning', listener);
  }
}

/** features-worker.mjs in its own process; `onLine` sees each line of its output as it comes. */
export function runWorker(args, onLine, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      for (const line of String(chunk).split('\n')) if (line) onLine?.(line, child);
    });
    child.stderr.on('data', (chunk) => { err += chunk; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}
