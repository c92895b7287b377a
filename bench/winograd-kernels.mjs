// VGG16's convolutions per Winograd products kernel and through oneDNN alone, side by side in one
// process (one model per variant, seeded alike), rounds interleaved: the engine's convolution phase
// per frame, and each variant's time over the default kernel's, round by round. No decoding, no
// reference: what the kernel alone is worth on this CPU.
//   node bench/winograd-kernels.mjs [--size 112] [--frames 16] [--rounds 7] [--out FILE]
import { addon } from '../dist/native.js';
import { argument, loadAverage, machine, median, round, writeResults } from './common.mjs';

const size = argument('size', 112);
const frames = argument('frames', 16);
const rounds = argument('rounds', 7);
const kernels = addon().backendInfo().winogradKernels.filter((kernel) => kernel !== 'baseline');
const variants = Object.fromEntries([...kernels.map((kernel) => [`winograd-${kernel}`, { winogradKernel: kernel }]),
  ['onednn', { winogradConvolutions: false }]]);
const loadBefore = loadAverage();
const models = {};
for (const [name, settings] of Object.entries(variants)) {
  models[name] = await addon().createModel({ classes: 2, hiddenSize: 8, seed: 5, threads: 0, ...settings });
}
const data = new Uint8Array(frames * size * size * 3);
for (let index = 0; index < data.length; index += 1) data[index] = (index * 37) % 251;
const clip = { data, frames, height: size, width: size };
for (const model of Object.values(models)) await model.embed([clip]);  // warm: packing, oneDNN kernels
const names = Object.keys(models);
const ms = Object.fromEntries(names.map((name) => [name, []]));
for (let index = 0; index < rounds; index += 1) {
  for (const name of names.map((_, position) => names[(position + index) % names.length])) {
    const before = models[name].counters().phaseMs.convolutions;
    await models[name].embed([clip]);
    ms[name].push((models[name].counters().phaseMs.convolutions - before) / frames);
  }
  console.log(`winograd-kernels round ${index + 1}/${rounds}: ${names.map((name) => `${name} ${ms[name].at(-1).toFixed(1)}`).join(', ')} ms per frame`);
}
const first = names[0];
writeResults('winograd-kernels', {
  benchmark: "VGG16's convolutions per frame, per Winograd kernel and oneDNN alone, one process, rounds interleaved",
  workload: { frames, frameSize: size, threads: addon().backendInfo().threads },
  rounds,
  variants: Object.fromEntries(names.map((name) => [name, {
    medianMsPerFrame: round(median(ms[name]), 1),
    bestMsPerFrame: round(Math.min(...ms[name]), 1),
    roundsMsPerFrame: ms[name].map((value) => round(value, 1)),
    timeOverDefault: round(median(ms[name].map((value, at) => value / ms[first][at])), 2),
    convolutions: models[name].counters().convolutions,
    settings: variants[name],
  }])),
  machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
  date: new Date().toISOString(),
});
for (const model of Object.values(models)) model.dispose();
