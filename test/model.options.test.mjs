// Options that used to be accepted and then ignored or failed deep inside: each is refused at the
// door with E_INVALID_ARGUMENT, and what is accepted works.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileDataset, VideoRNN, decodeVideo, makeSyntheticDataset, readSafetensors, writeSafetensors } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { makeClip, memoryDataset, tempDir } from './helpers/clips.mjs';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const classes = ['left', 'right'];
const small = { classes, hiddenSize: 8, headSize: 8, frameSize: 32, seed: 2 };
const invalid = (pattern) => (error) => error.code === 'E_INVALID_ARGUMENT' && pattern.test(error.message);

test("precision 'fp16' on the CPU is refused at create and load, naming what works; 'bf16' on the CPU runs", async () => {
  await assert.rejects(VideoRNN.create({ ...small, device: 'cpu', precision: 'fp16' }), invalid(/'fp32' or 'bf16'/));
  const model = await VideoRNN.create({ ...small, device: 'cpu', precision: 'bf16' });
  try {
    const [prediction] = await model.predict(makeClip(3, 32, 5));
    assert.ok(Math.abs(prediction.probabilities.left + prediction.probabilities.right - 1) < 1e-3);
    const file = path.join(dir, 'bf16.safetensors');
    await model.save(file);
    await assert.rejects(VideoRNN.load(file, { device: 'cpu', precision: 'fp16' }), invalid(/CUDA/));
  } finally {
    model.dispose();
  }
});

test('sampling is refused at create exactly where every decode would refuse it', async () => {
  const video = (await makeSyntheticDataset(path.join(dir, 'sampling'), { classes, perClass: 1, size: 32, seed: 1 })).sample(0).source;
  const values = { fps: 4, maxFrames: 5, frames: 3 };
  const names = Object.keys(values);
  for (let mask = 0; mask < 2 ** names.length; mask += 1) {
    const sampling = Object.fromEntries(names.filter((_, bit) => mask & (1 << bit)).map((name) => [name, values[name]]));
    const decoded = await decodeVideo(video, { size: 32, ...sampling }).then(() => 'ok', (error) => error.code);
    const created = await VideoRNN.create({ ...small, sampling }).then((model) => { model.dispose(); return 'ok'; }, (error) => error.code);
    assert.equal(created, decoded, `sampling ${JSON.stringify(sampling)}`);
    if (sampling.frames !== undefined && sampling.maxFrames !== undefined) assert.equal(created, 'E_INVALID_ARGUMENT');
  }
  await assert.rejects(VideoRNN.create({ ...small, sampling: { frames: 8, maxFrames: 8 } }), invalid(/sampling\.maxFrames/));
});

test('a checkpoint whose sampling no decode accepts is refused at load with E_CHECKPOINT', async () => {
  const model = await VideoRNN.create(small);
  const file = path.join(dir, 'sampling.safetensors');
  try {
    await model.save(file);
  } finally {
    model.dispose();
  }
  const { tensors, metadata } = await readSafetensors(file);
  const config = JSON.parse(metadata.config);
  await writeSafetensors(file, tensors, { ...metadata, config: JSON.stringify({ ...config, sampling: { frames: 4, maxFrames: 8 } }) });
  await assert.rejects(VideoRNN.load(file), (error) => error.code === 'E_CHECKPOINT' && /maxFrames/.test(error.message));
});

test('trainableBackboneLayers goes up to 15, the weight layers VGG16 has without fc8, in TypeScript and natively', async () => {
  await assert.rejects(VideoRNN.create({ ...small, trainableBackboneLayers: 16 }), invalid(/between 0 and 15/));
  const model = await VideoRNN.create({ ...small, trainableBackboneLayers: 15 });
  try {
    assert.equal(model.config.trainableBackboneLayers, 15);
    const data = memoryDataset(classes, [makeClip(2, 32, 1), makeClip(3, 32, 2)].map((clip, label) => ({ clip, label })));
    await assert.rejects(model.fineTune(data, { trainableBackboneLayers: 16, epochs: 1 }), invalid(/between 0 and 15/));
  } finally {
    model.dispose();
  }
  const native = await addon().createModel({ classes: 2, hiddenSize: 4 });
  try {
    // The glue checks its arguments on the calling thread, so the refusal may be a throw or a rejection.
    await assert.rejects(async () => native.configureTraining({ trainableBackboneLayers: 16 }), invalid(/between 0 and 15/));
    await native.configureTraining({ trainableBackboneLayers: 15 });
  } finally {
    native.dispose();
  }
});

test('fractional labels are refused, never truncated: dataset entries, and samples before any decode', async () => {
  assert.throws(() => new FileDataset(dir, classes, [{ id: 'a.mp4', label: 1.5, file: path.join(dir, 'a.mp4') }]), invalid(/label 1\.5/));
  const files = await makeSyntheticDataset(path.join(dir, 'labels'), { classes, perClass: 2, size: 32, seed: 3 });
  const fractional = {
    classes,
    size: files.size,
    sample: (index) => ({ ...files.sample(index), label: index === 1 ? 0.5 : files.sample(index).label }),
  };
  const model = await VideoRNN.create(small);
  try {
    await assert.rejects(model.train(fractional, { epochs: 1, batchSize: 4 }), invalid(/label 0\.5; a label is a whole class index/));
    await assert.rejects(model.evaluate(fractional), invalid(/label 0\.5/));
    assert.deepEqual([model.stats.videosDecoded, model.stats.framesEmbedded], [0, 0], 'refused before decoding anything');
    const memory = memoryDataset(classes, [{ clip: makeClip(2, 32, 1), label: 1.0000001 }, { clip: makeClip(2, 32, 2), label: 0 }]);
    await assert.rejects(model.train(memory, { epochs: 1 }), invalid(/1\.0000001/));
  } finally {
    model.dispose();
  }
});

test('a model file or weights file that does not exist is E_WEIGHTS_NOT_FOUND', async () => {
  await assert.rejects(VideoRNN.load(path.join(dir, 'absent.safetensors')), { code: 'E_WEIGHTS_NOT_FOUND' });
  await assert.rejects(VideoRNN.create({ ...small, backboneWeights: path.join(dir, 'absent.pth') }), { code: 'E_WEIGHTS_NOT_FOUND' });
});
