// Golden comparisons against Debian's torchvision: the same VGG16 weights, read from each file
// format, give the same fc7 embedding; a small checkpoint (LSTM and head), with the torchvision weights
// it references, loads into the seed's (fixed) PyTorch model and gives the same logits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, backendInfo } from '../dist/index.js';
import { makeClip, maxAbsDiff, readFloat32, referencePython, tempDir } from './helpers/clips.mjs';

const size = 64;
let dir;
let frames;

before(() => {
  dir = tempDir();
  frames = makeClip(3, size, 42);
  fs.writeFileSync(path.join(dir, 'frames.bin'), frames.data);
  execFileSync(referencePython, [path.resolve('test/helpers/reference.py'), 'vgg16', dir, '5', path.join(dir, 'frames.bin'),
    '3', String(size), String(size), 'zip,legacy,safetensors,timm'], { stdio: 'inherit' });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const files = {
  'torch zip (current torch.save)': 'vgg16.pth',
  'torch legacy (as vgg16-397923af.pth is published)': 'vgg16-legacy.pth',
  'safetensors, torchvision names': 'vgg16.safetensors',
  "safetensors, timm's vgg16.tv_in1k names": 'vgg16-timm.safetensors',
};

for (const [format, file] of Object.entries(files)) {
  test(`fc7 equals torchvision's vgg16 classifier[:-1] to 1e-4: ${format}`, async () => {
    const expected = readFloat32(path.join(dir, 'fc7.bin'));
    const model = await VideoRNN.create({ classes: ['a', 'b'], backboneWeights: path.join(dir, file), hiddenSize: 8, frameSize: size });
    try {
      const [fc7] = await model.embed(frames);
      assert.equal(fc7.length, 3 * 4096);
      const scale = Math.max(...expected.map(Math.abs));
      assert.ok(scale > 1e-3, 'the reference embedding is not all zeros');
      const diff = maxAbsDiff(fc7, expected);
      assert.ok(diff < 1e-4, `max difference ${diff} (largest value ${scale})`);
    } finally {
      model.dispose();
    }
  });
}

// Logits of `clips` from the seed's PyTorch model (bugs fixed) after loading `model`'s small checkpoint
// and the torchvision weights it references (Python checks their identity against the checkpoint's).
async function seedLogits(model, clips, name) {
  const checkpoint = path.join(dir, `${name}.safetensors`);
  await model.save(checkpoint);
  assert.ok(fs.statSync(checkpoint).size < 5e6, 'a small checkpoint');
  fs.writeFileSync(path.join(dir, 'clips.bin'), Buffer.concat(clips.map((clip) => clip.data)));
  const out = path.join(dir, `${name}-logits.bin`);
  execFileSync(referencePython, [path.resolve('test/helpers/reference.py'), 'seed-logits', checkpoint, path.join(dir, 'clips.bin'),
    clips.map((clip) => clip.frames).join(','), String(clips[0].height), String(clips[0].width), out, path.join(dir, 'vgg16.pth')],
  { stdio: 'inherit' });
  fs.rmSync(checkpoint);
  return readFloat32(out);
}

// Our logits, from the probabilities: log p differs from the logits by one constant per row.
async function assertSameLogits(options, lengths, name) {
  const classes = ['a', 'b', 'c'];
  const model = await VideoRNN.create({ classes, frameSize: 32, backboneWeights: path.join(dir, 'vgg16.pth'), ...options });
  const clips = lengths.map((length, index) => makeClip(length, 32, 100 + index));
  try {
    const logits = await seedLogits(model, clips, name);
    const predictions = await model.predict(clips, { batchSize: clips.length });
    const centre = (row) => row.map((value) => value - row.reduce((a, b) => a + b, 0) / row.length);
    predictions.forEach((prediction, row) => {
      const ours = centre(classes.map((label) => Math.log(prediction.probabilities[label])));
      const reference = centre(Array.from(logits.subarray(row * 3, row * 3 + 3)));
      assert.ok(Math.max(...reference.map(Math.abs)) > 1e-4, 'the reference logits are not all equal');
      assert.ok(maxAbsDiff(ours, reference) < 1e-4, `clip ${row} (${lengths[row]} frames): ${ours} vs ${reference}`);
    });
  } finally {
    model.dispose();
  }
}

test("a checkpoint loads into the seed's PyTorch model (bugs fixed) and gives the same logits to 1e-4", async () => {
  await assertSameLogits({ hiddenSize: 12, headSize: 10, seed: 9 }, [2, 5, 3], 'one-layer');
});

// Lengths in no order (neither sorted nor reversed), so packing must sort and unsort them.
const stacks = [
  { numLayers: 2, bidirectional: true, hiddenSize: 10, headSize: 8, seed: 21 },
  { numLayers: 2, bidirectional: false, hiddenSize: 10, headSize: 8, seed: 22 },
  { numLayers: 3, bidirectional: true, hiddenSize: 6, headSize: 12, seed: 23, dropout: 0.3 },
  { numLayers: 3, bidirectional: false, hiddenSize: 6, headSize: 12, seed: 24 },
];
for (const options of stacks) {
  const name = `${options.numLayers} layers, ${options.bidirectional ? 'bidirectional' : 'unidirectional'}`;
  test(`${name}: the same logits as the seed's PyTorch model to 1e-4, lengths [3, 6, 1, 4, 2]`, async () => {
    await assertSameLogits(options, [3, 6, 1, 4, 2], `layers-${options.numLayers}-${options.bidirectional ? 'bi' : 'uni'}`);
  });
}

// The convolutions run as Winograd F(4x4, 3x3) on 4x4 output tiles (native/winograd.h). At 40 px
// the maps of conv3 to conv5 (10, 5 and 2 px) end in partial tiles, 5 frames fill no whole block
// of the 6-row products, and one intra-op thread takes the serial schedule.
for (const threads of [1, 2]) {
  test(`fc7 at 40 px (partial Winograd tiles) on ${threads} thread(s) equals torchvision's to 1e-4`, async () => {
    const small = 40;
    const clip = makeClip(5, small, 7);
    const out = path.join(dir, `small-${threads}`);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'frames.bin'), clip.data);
    execFileSync(referencePython, [path.resolve('test/helpers/reference.py'), 'vgg16', out, '11', path.join(out, 'frames.bin'),
      '5', String(small), String(small), 'safetensors'], { stdio: 'inherit' });
    const expected = readFloat32(path.join(out, 'fc7.bin'));
    const model = await VideoRNN.create({ classes: ['a', 'b'], backboneWeights: path.join(out, 'vgg16.safetensors'), hiddenSize: 8,
      frameSize: small, threads });
    try {
      const [fc7] = await model.embed(clip);
      // The 12 convolutions after conv1_1 did run as Winograd, through the CPU's default kernel.
      const kernel = backendInfo().winogradKernels[0];
      const counter = `winograd${kernel[0].toUpperCase()}${kernel.slice(1)}`;
      assert.deepEqual(model.stats.convolutions, { winogradAvx512: 0, winogradAvx2: 0, winogradBaseline: 0, onednn: 1, onednnBf16: 0, dense: 0, [counter]: 12 });
      assert.ok(Math.max(...expected.map(Math.abs)) > 1e-3, 'the reference embedding is not all zeros');
      const diff = maxAbsDiff(fc7, expected);
      assert.ok(diff < 1e-4, `max difference ${diff}`);
    } finally {
      model.dispose();
    }
  });
}
