// Renders what every measurement uses into one work folder and describes it in fixture.json:
// 32 synthetic clips of 8 to 24 frames at 112 px, a model checkpoint (hidden 256) that both sides
// load, frames for the VGG16 timings, a batch with lengths 4 to 32, and tiny clips for the memory run.
//   node bench/setup.mjs --work FOLDER
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { argument } from './common.mjs';

const work = path.resolve(argument('work', ''));
if (!argument('work', '')) throw new Error('--work FOLDER is required');
fs.mkdirSync(work, { recursive: true });

const frameSize = 112;
const hiddenSize = 256;
const batchLengths = [4, 8, 12, 16, 20, 24, 28, 32];

/** Deterministic pseudo-random pixels (a 32-bit LCG, Numerical Recipes' constants): same bytes on both sides. */
function writeFrames(file, count, size) {
  const bytes = new Uint8Array(count * size * size * 3);
  let state = 12345;
  for (let index = 0; index < bytes.length; index += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[index] = state >>> 24;
  }
  fs.writeFileSync(file, bytes);
  return file;
}

/** A fixed shuffle (Fisher-Yates over a seeded LCG), so that training batches mix the classes. */
function permutation(count, seed) {
  const order = Array.from({ length: count }, (_, index) => index);
  let state = seed;
  for (let index = count - 1; index > 0; index -= 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const other = state % (index + 1);
    [order[index], order[other]] = [order[other], order[index]];
  }
  return order;
}

function listing(dataset, order) {
  const samples = order.map((index) => dataset.sample(index));
  return { files: samples.map((sample) => sample.source), labels: samples.map((sample) => sample.label),
    ids: samples.map((sample) => sample.id) };
}

const clips = await makeSyntheticDataset(path.join(work, 'clips-112'),
  { perClass: 8, minFrames: 8, maxFrames: 24, size: frameSize, seed: 1 });
const tiny = await makeSyntheticDataset(path.join(work, 'clips-32'),
  { perClass: 1, minFrames: 8, maxFrames: 8, size: 32, seed: 2 });

// Random VGG16 weights (torchvision's initialisation): speed does not depend on the values, and the
// checkpoint carries them to the reference so that both sides compute the same numbers.
process.removeAllListeners('warning');
const model = await VideoRNN.create({ classes: clips.classes, hiddenSize, frameSize, seed: 7 });
const checkpoint = path.join(work, 'model.safetensors');
await model.save(checkpoint);
model.dispose();

const inOrder = Array.from({ length: clips.size }, (_, index) => index);
const fixture = {
  checkpoint,
  classes: clips.classes,
  frameSize,
  hiddenSize,
  predict: listing(clips, inOrder),
  train: listing(clips, permutation(clips.size, 2024)),
  frames: {
    112: writeFrames(path.join(work, 'frames-112.bin'), 32, 112),
    224: writeFrames(path.join(work, 'frames-224.bin'), 8, 224),
  },
  packed: { size: 64, lengths: batchLengths,
    frames: writeFrames(path.join(work, 'frames-64.bin'), batchLengths.reduce((sum, length) => sum + length, 0), 64) },
  tiny: { files: listing(tiny, [0, 1, 2, 3]).files, classes: tiny.classes, frameSize: 32 },
};
fixture.predict.frames = clips.clips.reduce((sum, clip) => sum + clip.frames, 0);
fs.writeFileSync(path.join(work, 'fixture.json'), JSON.stringify(fixture, null, 2) + '\n');
console.log(`fixture: ${clips.size} clips (${fixture.predict.frames} frames) at ${frameSize} px in ${work}`);
