// One forward of one batch, the whole model (VGG16 fc7 on the packed frames, bidirectional LSTM, head):
// B=4 clips of 8 frames at 112 px, hidden 256, ours (predict on in-memory clips) vs the seed's model in
// /usr/bin/python3 with the same checkpoint and threads. Blocks of rounds alternate between the sides.
//   node bench/forward-batch.mjs [--rounds 3] [--blocks 2] [--out bench/results/forward-batch.json]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VideoRNN, backendInfo } from '../dist/index.js';
import { argument, benchFolder, machine, median, python, round, writeResults } from './common.mjs';

const rounds = argument('rounds', 3);
const blocks = argument('blocks', 2);
const size = 112;
const lengths = [8, 8, 8, 8];
const threads = os.availableParallelism();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-forward-'));
try {
  const checkpoint = path.join(scratch, 'model.safetensors');
  const model = await VideoRNN.create({ classes: ['a', 'b', 'c', 'd'], hiddenSize: 256, frameSize: size, seed: 5 });
  await model.save(checkpoint);
  const perFrame = size * size * 3;
  const all = new Uint8Array(lengths.reduce((a, b) => a + b) * perFrame);
  let state = 7;
  for (let index = 0; index < all.length; index += 1) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    all[index] = state >>> 24;
  }
  fs.writeFileSync(path.join(scratch, 'frames.u8'), all);
  let offset = 0;
  const clips = lengths.map((frames) => {
    const data = all.subarray(offset * perFrame, (offset + frames) * perFrame);
    offset += frames;
    return { data, frames, height: size, width: size };
  });
  await model.predict(clips, { batchSize: lengths.length });
  const ours = [];
  const reference = [];
  let ourProbabilities;
  let referenceLogits;
  for (let block = 0; block < blocks; block += 1) {
    for (let index = 0; index < rounds; index += 1) {
      const started = performance.now();
      ourProbabilities = await model.predict(clips, { batchSize: lengths.length });
      ours.push((performance.now() - started) / 1000);
    }
    const answer = JSON.parse(execFileSync(python, [path.join(benchFolder, 'reference', 'forward_batch.py'), checkpoint,
      path.join(scratch, 'frames.u8'), String(size), lengths.join(','), String(threads), String(rounds)],
    { cwd: path.join(benchFolder, 'reference'), encoding: 'utf8' }));
    reference.push(...answer.seconds);
    referenceLogits = answer.logits;
    console.log(`block ${block + 1}/${blocks}: ours ${ours.slice(-rounds).map((s) => s.toFixed(3)).join(' ')} s, ` +
      `reference ${answer.seconds.map((s) => s.toFixed(3)).join(' ')} s`);
  }
  let difference = 0;
  referenceLogits.forEach((row, clip) => {
    const top = Math.max(...row);
    const exps = row.map((value) => Math.exp(value - top));
    const total = exps.reduce((a, b) => a + b);
    exps.forEach((value, column) => {
      difference = Math.max(difference, Math.abs(value / total - ourProbabilities[clip].probabilities[model.classes[column]]));
    });
  });
  model.dispose();
  writeResults('forward-batch', {
    benchmark: 'one forward of one batch (VGG16 fc7 on the packed frames, LSTM, head), no decoding',
    workload: { clips: lengths.length, lengths, frameSize: size, hiddenSize: 256, threads },
    ours: { medianSeconds: round(median(ours), 3), roundsSeconds: ours.map((value) => round(value, 3)), blas: backendInfo().blas },
    reference: { medianSeconds: round(median(reference), 3), roundsSeconds: reference.map((value) => round(value, 3)) },
    speedup: round(median(reference) / median(ours), 3),
    maxProbabilityDifference: round(difference, 8),
    machine: machine(),
    date: new Date().toISOString(),
  });
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
