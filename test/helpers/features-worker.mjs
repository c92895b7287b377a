// A separate process for features.extract.test.mjs: an extractor to kill, and training whose peak RSS
// is measured (VmHWM covers this process alone).
//   extract VIDEOS STORE          extract a video folder (one rank of a group with WORLD_SIZE set), printing a line
//                                 per batch and then the report
//   fill BACKBONE STORE N FRAMES  store random rows for N in-memory clips (keys as the model makes them)
//   train BACKBONE STORE N FRAMES train one epoch over them with no memory cache; prints the peak RSS
//                                 of its steps (VmHWM reset after the first)
import fs from 'node:fs';
import { VideoRNN, VideoFolderDataset } from '../../dist/index.js';
import { FeatureStore } from '../../dist/features/store.js';
import { entryKey } from '../../dist/features/use.js';
import { makeClip } from './clips.mjs';

const [mode, first, folder, count, frames] = process.argv.slice(2);
const classes = ['left', 'right'];
const options = { classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 5, precision: 'fp32' };
const lazyDataset = (size, length) => ({ classes, size,
  sample: (index) => ({ id: `clip-${index}`, label: index % 2, source: makeClip(length, 32, index + 1) }) });

if (mode === 'extract') {
  const model = await VideoRNN.create(options);
  const data = await VideoFolderDataset.open(first);
  const report = await model.extract(data, { featureStore: folder, batchSize: 2, distributed: process.env.WORLD_SIZE ? { timeoutMs: 60000 } : undefined,
    onProgress: (event) => console.log(`progress ${event.batch}/${event.batches}`) });
  console.log(JSON.stringify({ ...report, framesEmbedded: model.stats.framesEmbedded }));
  model.dispose();
} else if (mode === 'fill') {
  const model = await VideoRNN.create({ ...options, backboneWeights: first });
  const store = await FeatureStore.open(folder);
  const context = { store, backbone: model.backbone.identity, precision: 'fp32', frameSize: 32, sampling: model.config.sampling,
    counters: { hits: 0, misses: 0, writes: 0 } };
  const data = lazyDataset(Number(count), Number(frames));
  const rows = new Float32Array(Number(frames) * 4096);
  for (let index = 0; index < data.size; index += 1) {
    for (let i = 0; i < rows.length; i += 1) rows[i] = Math.random();
    const { key, origin } = await entryKey(context, data.sample(index).source, `clip ${index}`);
    if (!(await store.put(key, rows, Number(frames), origin))) throw new Error(`entry ${index} was not written`);
  }
  model.dispose();
} else if (mode === 'train') {
  const model = await VideoRNN.create({ ...options, backboneWeights: first, cacheMB: Number(process.env.FEATURES_WORKER_CACHE_MB ?? 0), featureStore: folder });
  const data = lazyDataset(Number(count), Number(frames));
  const status = (field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  // Measured from the first step on: what a train call allocates before it (the backbone's fingerprint) does not depend on the data.
  let beforeKiB;
  // What loading the backbone left for the collector (its file's buffers) goes first: their finalisers run after a collection.
  for (let round = 0; round < 3; round += 1) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await model.train(data, { epochs: 1, batchSize: 8, seed: 1, onProgress: () => {
    if (beforeKiB !== undefined) return;
    globalThis.gc();
    fs.writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    beforeKiB = status('VmRSS');
  } });
  const hwmKiB = status("VmHWM");
  const { framesEmbedded, featureStoreHits: hits, featureStoreMisses: misses } = model.stats;
  console.log(JSON.stringify({ beforeKiB, hwmKiB, framesEmbedded, hits, misses }));
  model.dispose();
} else {
  throw new Error(`unknown mode ${mode}`);
}
