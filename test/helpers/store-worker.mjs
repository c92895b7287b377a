// A separate process working on a feature store, for the atomicity and concurrency tests.
// argv[2] is JSON: { mode, path, keys, frames, dim, claims }.
//   write:   puts entries 0..keys-1 one after the other (large rows, so a write takes a while).
//   fill:    for each entry in a shuffled order: get it; else (with claims) claim it, and compute and
//            put it only when it is still missing; without a claim, wait for it. Prints "computed N"
//            for each entry it computed, "done" at the end.
import { FeatureStore } from '../../dist/index.js';
import { storeKey, storeRows, storeOrigin } from './store-rows.mjs';

const config = JSON.parse(process.argv[2]);
const store = await FeatureStore.open(config.path, (message) => process.stderr.write(`warning: ${message}\n`));
const order = [...Array(config.keys).keys()];
if (config.mode === 'fill') {
  // Each process its own order, so that they collide in the middle as well as at the start.
  let state = process.pid;
  for (let i = order.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
}
for (const index of order) {
  const key = storeKey(index);
  if (config.mode === 'write') {
    await store.put(key, storeRows(index, config.frames, config.dim), config.frames, storeOrigin);
    continue;
  }
  if (await store.get(key)) continue;
  if (!config.claims) {
    process.stdout.write(`computed ${index}\n`);
    await store.put(key, storeRows(index, config.frames, config.dim), config.frames, storeOrigin);
    continue;
  }
  const release = await store.claim(key);
  if (!release) {
    const found = await store.waitFor(key, { timeoutMs: 20_000 });
    if (!found) process.stdout.write(`lost ${index}\n`);
    continue;
  }
  try {
    if (await store.has(key)) continue;
    process.stdout.write(`computed ${index}\n`);
    await store.put(key, storeRows(index, config.frames, config.dim), config.frames, storeOrigin);
  } finally {
    await release();
  }
}
process.stdout.write('done\n');
