// Speed-up of 2 data-parallel processes (Gloo on loopback) over 1, on this machine.
// Each side trains the same 48 in-memory clips for 2 epochs with the cache off (so the CNN runs in
// every epoch). 1 process uses 2 intra-op threads; each of 2 ranks uses 1: same cores in total.
// Writes bench/results/distributed.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../dist/free-port.js';
import { runNode } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const rounds = Number(process.argv[2] ?? 2);

const workerSource = `
import { VideoRNN } from ${JSON.stringify(path.resolve(here, '../dist/index.js'))};
import { noiseClip } from ${JSON.stringify(path.resolve(here, 'common.mjs'))};
const size = 64;
const clip = (frames, seed) => noiseClip(frames, size, seed);
const data = { classes: ['a', 'b'], size: 48, sample: (i) => ({ id: 'c' + i, label: i % 2, source: clip(6 + (i % 7), 1000 + i) }) };
const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 128, frameSize: size, seed: 1, threads: Number(process.env.THREADS) });
const started = performance.now();
const report = await model.train(data, { epochs: 2, batchSize: Number(process.env.BATCH), cacheEmbeddings: false, seed: 1,
  distributed: process.env.WORLD_SIZE ? {} : undefined });
console.log(JSON.stringify({ seconds: (performance.now() - started) / 1000, loss: report.loss }));
model.dispose();`;

async function start(file, env) {
  const { code, stdout } = await runNode(file, env);
  if (code !== 0) throw new Error(`exit ${code}`);
  return JSON.parse(stdout.trim().split('\n').pop());
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-dist-bench-'));
const file = path.join(dir, 'worker.mjs');
fs.writeFileSync(file, workerSource);
const single = [];
const pair = [];
const loadStart = os.loadavg();
for (let round = 0; round < rounds; round += 1) {
  single.push((await start(file, { THREADS: '2', BATCH: '8', WORLD_SIZE: '' })).seconds);
  const port = String(await freePort());
  const ranks = await Promise.all([0, 1].map((rank) => start(file, { THREADS: '1', BATCH: '4', WORLD_SIZE: '2', RANK: String(rank), MASTER_PORT: port })));
  pair.push(Math.max(...ranks.map((rank) => rank.seconds)));
}
fs.rmSync(dir, { recursive: true, force: true });
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const result = {
  date: new Date().toISOString(),
  machine: `${os.cpus().length} x ${os.cpus()[0].model}`,
  workload: '48 in-memory clips of 6-12 frames at 64 px, hidden 128, 2 epochs, cache off, global batch 8',
  oneProcessSeconds: single,
  twoRanksSeconds: pair,
  speedUp: median(single) / median(pair),
  loadAverage: { start: loadStart, end: os.loadavg() },
};
fs.mkdirSync(path.join(here, 'results'), { recursive: true });
fs.writeFileSync(path.join(here, 'results', 'distributed.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
