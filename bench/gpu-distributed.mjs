// N ranks train the same in-memory clips with backend 'nccl' through the library API, each on its
// own GPU (cuda:LOCAL_RANK, picked by the library from the launcher environment) when there are
// enough GPUs, else all on cuda:0. Each rank saves its weights; the JSON records the epoch times, the
// loss, and the largest weight difference between ranks (0 when every gradient allreduce went
// through NCCL), or each failed rank's last error lines.
//   node bench/gpu-distributed.mjs --gpus G --ranks N --out FILE
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../dist/weights/index.js';
import { freePort } from '../dist/free-port.js';
import { argument, benchFolder as here, runNode as start } from './common.mjs';

const gpus = argument('gpus', 1);
const ranks = argument('ranks', 2);
const out = argument('out', path.join(here, 'results', 'gpu-distributed.json'));

const workerSource = `
import { VideoRNN } from ${JSON.stringify(path.resolve(here, '../dist/index.js'))};
import { noiseClip } from ${JSON.stringify(path.resolve(here, 'common.mjs'))};
const size = 112;
const clip = (frames, seed) => noiseClip(frames, size, seed);
const data = { classes: ['a', 'b'], size: 64, sample: (i) => ({ id: 'c' + i, label: i % 2, source: clip(8 + (i % 5), 1000 + i) }) };
try {
  const model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 256, frameSize: size, seed: Number(process.env.RANK) + 1,
    device: process.env.DEVICE, precision: 'fp32' });
  const started = performance.now();
  const report = await model.train(data, { epochs: 3, batchSize: 8, cacheEmbeddings: false, seed: 1, learningRate: 1e-3,
    distributed: { backend: 'nccl', timeoutMs: 120000 } });
  await model.save(process.env.SAVE);
  console.log(JSON.stringify({ rank: Number(process.env.RANK), device: model.device, seconds: (performance.now() - started) / 1000,
    epochSeconds: report.epochs.map((epoch) => epoch.seconds), loss: report.loss }));
  model.dispose();
} catch (error) {
  // One line for the JSON: NCCL's or the library's own message.
  console.error('error: ' + (error.code ?? error.name) + ': ' + String(error.message).split('\\n')[0]);
  process.exit(1);
}`;

async function maxDifference(a, b) {
  const left = (await readSafetensors(a)).tensors;
  const right = (await readSafetensors(b)).tensors;
  let max = 0;
  for (const [name, tensor] of left) {
    const other = right.get(name).data;
    tensor.data.forEach((value, index) => { max = Math.max(max, Math.abs(value - other[index])); });
  }
  return max;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-nccl-bench-'));
const file = path.join(dir, 'worker.mjs');
fs.writeFileSync(file, workerSource);
const port = String(await freePort());
// DEVICE 'cuda': the library takes cuda:LOCAL_RANK; with fewer GPUs than ranks all go on cuda:0.
const runs = await Promise.all(Array.from({ length: ranks }, (_, rank) => start(file, {
  RANK: String(rank), WORLD_SIZE: String(ranks), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(ranks), MASTER_ADDR: '127.0.0.1',
  MASTER_PORT: port, DEVICE: gpus >= ranks ? 'cuda' : 'cuda:0', SAVE: path.join(dir, `rank${rank}.safetensors`),
})));
const ok = runs.every((run) => run.code === 0);
const summary = {
  date: new Date().toISOString(),
  gpus,
  ranks,
  backend: 'nccl',
  ok,
  ranksReport: runs.map((run) => (run.code === 0 ? JSON.parse(run.stdout.trim().split('\n').pop())
    : { exit: run.code, error: run.stderr.split('\n').filter((line) => line.startsWith('error: ')).join('\n') || run.stderr.slice(-500) })),
  maxWeightDifferenceBetweenRanks: ok && ranks > 1
    ? await maxDifference(path.join(dir, 'rank0.safetensors'), path.join(dir, `rank${ranks - 1}.safetensors`)) : null,
};
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${ranks} NCCL rank(s) on ${gpus} GPU(s): ${ok ? 'trained' : 'FAILED'}; written to ${out}`);
