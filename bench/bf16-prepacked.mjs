// VGG16's forward per frame in fp32 (the defaults), bf16 under autocast, and bf16 with the
// convolutions prepacked (native/prepacked_features.h), side by side in one process (one model per
// variant, seeded alike), rounds interleaved: the whole forward (the engine's convolution and
// classifier phases) and the convolutions alone, per frame. Then top-1 agreement of each bf16 variant
// with fp32 over a few clips. The weights are seeded at random (no download): agreement between
// near-tied random logits is a lower bound of what trained weights give.
//   node bench/bf16-prepacked.mjs [--size 112] [--frames 16] [--rounds 7] [--clips 16] [--out FILE]
import { backendInfo } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { argument, loadAverage, machine, median, round, writeResults } from './common.mjs';

const size = argument('size', 112);
const frames = argument('frames', 16);
const rounds = argument('rounds', 7);
const clipCount = argument('clips', 16);
const info = backendInfo();
const variants = {
  fp32: { precision: 'fp32' },
  'bf16-autocast': { precision: 'bf16', bf16PrepackedConvolutions: false },
  'bf16-prepacked': { precision: 'bf16', bf16PrepackedConvolutions: true },
};
const loadBefore = loadAverage();
const models = {};
for (const [name, settings] of Object.entries(variants)) {
  models[name] = await addon().createModel({ classes: 5, hiddenSize: 32, seed: 5, threads: 0, ...settings });
}
function clipOf(seed, count) {
  const data = new Uint8Array(count * size * size * 3);
  let state = seed >>> 0;
  for (let index = 0; index < data.length; index += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[index] = state >>> 24;
  }
  return { data, frames: count, height: size, width: size };
}
const clip = clipOf(1, frames);
for (const model of Object.values(models)) await model.embed([clip]);  // warm: packing, oneDNN kernels
const names = Object.keys(models);
const forwardMs = Object.fromEntries(names.map((name) => [name, []]));
const convolutionMs = Object.fromEntries(names.map((name) => [name, []]));
for (let index = 0; index < rounds; index += 1) {
  for (const name of names.map((_, position) => names[(position + index) % names.length])) {
    const before = models[name].counters().phaseMs;
    await models[name].embed([clip]);
    const after = models[name].counters().phaseMs;
    convolutionMs[name].push((after.convolutions - before.convolutions) / frames);
    forwardMs[name].push((after.convolutions + after.classifier - before.convolutions - before.classifier) / frames);
  }
  console.log(`bf16-prepacked round ${index + 1}/${rounds}: ${names.map((name) => `${name} ${forwardMs[name].at(-1).toFixed(1)}`).join(', ')} ms per frame`);
}
// Top-1 of each variant over the same clips (4 frames each), against fp32's.
const clips = Array.from({ length: clipCount }, (_, index) => clipOf(100 + index, 4));
const top1 = {};
for (const name of names) {
  const { probabilities, classes } = await models[name].predict(clips);
  top1[name] = clips.map((_, row) => {
    const values = Array.from(probabilities.subarray(row * classes, (row + 1) * classes));
    return values.indexOf(Math.max(...values));
  });
}
const agreement = (name) => top1[name].filter((label, index) => label === top1.fp32[index]).length / clipCount;
const counts = Object.fromEntries(names.map((name) => [name, models[name].counters().convolutions]));
const first = names[0];
const autocastName = names[1];
writeResults('bf16-prepacked', {
  benchmark: "VGG16's forward per frame in fp32, bf16 autocast and bf16 prepacked, one process, rounds interleaved",
  workload: { frames, frameSize: size, threads: info.threads, agreementClips: clipCount, agreementFrames: 4 },
  rounds,
  variants: Object.fromEntries(names.map((name) => [name, {
    forwardMedianMsPerFrame: round(median(forwardMs[name]), 2),
    forwardBestMsPerFrame: round(Math.min(...forwardMs[name]), 2),
    forwardRoundsMsPerFrame: forwardMs[name].map((value) => round(value, 2)),
    convolutionsMedianMsPerFrame: round(median(convolutionMs[name]), 2),
    timeOverFp32: round(median(forwardMs[name].map((value, at) => value / forwardMs[first][at])), 3),
    timeOverBf16Autocast: round(median(forwardMs[name].map((value, at) => value / forwardMs[autocastName][at])), 3),
    top1AgreementWithFp32: round(agreement(name), 3),
    convolutions: counts[name],
    settings: variants[name],
  }])),
  cpuBf16: info.cpuBf16,
  machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
  date: new Date().toISOString(),
});
for (const model of Object.values(models)) model.dispose();
