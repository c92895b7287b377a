// Small checkpoints: a model built from a backbone weights file saves the LSTM, the head and the backbone
// layers it trained, and references the rest by the backbone's identity. Loading finds the backbone (given,
// beside the checkpoint, on the search path), checks its identity, and never loads onto other weights.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, readSafetensors } from '../dist/index.js';
import { makeClip, maxAbsDiff, memoryDataset, tempDir } from './helpers/clips.mjs';
import { parseJson, runCli } from './cli.run.mjs';
import { startServer, json } from './helpers/serve.mjs';
import { backboneSearchPath } from '../dist/weights/reference.js';

const classes = ['left', 'right'];
const clips = [makeClip(3, 32, 31), makeClip(2, 32, 32)];
let dir;
let weightsDir;
let backbone;

before(async () => {
  dir = tempDir();
  weightsDir = path.join(dir, 'weights');
  fs.mkdirSync(weightsDir);
  fs.mkdirSync(path.join(dir, 'models'));
  // One backbone file, written once: every model below is built from it.
  backbone = path.join(weightsDir, 'vgg16-test.safetensors');
  const random = await VideoRNN.create({ classes, hiddenSize: 8, frameSize: 32, seed: 1 });
  try {
    await random.saveBackbone(backbone);
  } finally {
    random.dispose();
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function model(options = {}) {
  return VideoRNN.create({ classes, hiddenSize: 32, frameSize: 32, seed: 7, backboneWeights: backbone, ...options });
}

async function assertSameOutputs(expected, actual, label) {
  const [before, after] = [await expected.embed(clips), await actual.embed(clips)];
  before.forEach((rows, index) => assert.equal(maxAbsDiff(rows, after[index]), 0, `${label}: fc7 of clip ${index}`));
  assert.deepEqual(await actual.predict(clips), await expected.predict(clips), `${label}: predictions`);
}

function assertCode(code, pattern) {
  return (error) => {
    assert.equal(error?.code, code, error?.stack);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

test('a model built from a backbone file saves its LSTM and head only, and loads back exactly from the file given, the search path or beside it',
  async (t) => {
    const saved = await model();
    const file = path.join(dir, 'models', 'small.safetensors');
    const loaded = [];
    try {
      assert.equal(saved.backbone.hint, 'vgg16-test.safetensors');
      assert.equal(saved.backbone.naming, 'torchvision');
      await saved.save(file);
      const { tensors, metadata } = await readSafetensors(file);
      t.diagnostic(`small checkpoint, hidden 32: ${fs.statSync(file).size} bytes`);
      assert.ok(fs.statSync(file).size < 5e6, `${fs.statSync(file).size} bytes`);
      assert.equal(metadata.version, '2');
      assert.deepEqual([...tensors.keys()].filter((name) => name.startsWith('embedding.')), [], 'no backbone tensor');
      assert.ok(tensors.has('lstm.weight_ih_l0_reverse') && tensors.has('classifier.2.bias'));
      assert.deepEqual(JSON.parse(metadata.backbone),
        { identity: saved.backbone.identity, naming: 'torchvision', hint: 'vgg16-test.safetensors', trained: [] });

      loaded.push(await VideoRNN.load(file, { backboneWeights: backbone }));
      // The option's folders, then the environment variable's: a folder without the file is passed over.
      process.env.VIDEO_RNN_BACKBONE_PATH = weightsDir;
      try {
        loaded.push(await VideoRNN.load(file, { backbonePath: [path.join(dir, 'nothing-here')] }));
      } finally {
        delete process.env.VIDEO_RNN_BACKBONE_PATH;
      }
      assert.deepEqual(backboneSearchPath(['a', 'b'], { VIDEO_RNN_BACKBONE_PATH: `c${path.delimiter}${path.delimiter}d` }), ['a', 'b', 'c', 'd']);
      assert.deepEqual(backboneSearchPath(`a${path.delimiter}b`, {}), ['a', 'b']);
      fs.linkSync(backbone, path.join(dir, 'models', 'vgg16-test.safetensors'));
      loaded.push(await VideoRNN.load(file));
      fs.rmSync(path.join(dir, 'models', 'vgg16-test.safetensors'));
      for (const [index, copy] of loaded.entries()) {
        assert.deepEqual(copy.backbone.checkpoint, { path: file, version: 2, selfContained: false });
        assert.equal(copy.backbone.identity, saved.backbone.identity);
        await assertSameOutputs(saved, copy, `load ${index}`);
      }
    } finally {
      saved.dispose();
      for (const copy of loaded) copy.dispose();
    }
  });

test('a missing backbone, or one with other weights, is a coded error naming the identity and the file expected', async () => {
  const saved = await model();
  const file = path.join(dir, 'models', 'orphan.safetensors');
  const other = path.join(dir, 'models', 'vgg16-test.safetensors');
  try {
    await saved.save(file);
    const { identity } = saved.backbone;
    await assert.rejects(VideoRNN.load(file),
      assertCode('E_BACKBONE_NOT_FOUND', new RegExp(`${identity}.*vgg16-test\\.safetensors.*VIDEO_RNN_BACKBONE_PATH`)));
    // The same file with one value changed: same names and shapes, other weights.
    fs.copyFileSync(backbone, other);
    const handle = fs.openSync(other, 'r+');
    fs.writeSync(handle, Buffer.from(new Float32Array([0.5]).buffer), 0, 4, fs.statSync(other).size - 4);
    fs.closeSync(handle);
    await assert.rejects(VideoRNN.load(file, { backboneWeights: other }), assertCode('E_BACKBONE_MISMATCH', new RegExp(identity)));
    // Found by its name beside the checkpoint, but not the weights it was trained on.
    await assert.rejects(VideoRNN.load(file), assertCode('E_BACKBONE_MISMATCH', /other weights/));
  } finally {
    saved.dispose();
    fs.rmSync(other, { force: true });
  }
});

test('fine-tuning stores the unfrozen layers and references the rest; embedBackbone writes a self-contained file', async (t) => {
  const saved = await model();
  const small = path.join(dir, 'models', 'tuned.safetensors');
  const whole = path.join(dir, 'models', 'tuned-whole.safetensors');
  const loaded = [];
  try {
    const data = memoryDataset(classes, [0, 1, 0, 1].map((label, index) => ({ clip: makeClip(2, 32, 50 + index), label })));
    await saved.fineTune(data, { trainableBackboneLayers: 1, epochs: 1, batchSize: 4, learningRate: 1e-3, backboneLearningRate: 1e-2 });
    assert.deepEqual(saved.backbone.trainedTensors, ['classifier.3.weight', 'classifier.3.bias']);
    await saved.save(small);
    await saved.save(whole, { embedBackbone: true });
    const sizes = [small, whole].map((file) => fs.statSync(file).size);
    t.diagnostic(`fine-tuned (fc7 unfrozen): ${sizes[0]} bytes small, ${sizes[1]} bytes self-contained`);
    const { tensors } = await readSafetensors(small);
    assert.deepEqual([...tensors.keys()].filter((name) => name.startsWith('embedding.')).sort(),
      ['embedding.classifier.3.bias', 'embedding.classifier.3.weight']);
    assert.ok(sizes[1] > 500e6, 'the whole backbone is in the self-contained file');

    loaded.push(await VideoRNN.load(small, { backboneWeights: backbone }));
    // Nothing to find beside it or on the search path: the file alone is the model.
    loaded.push(await VideoRNN.load(whole));
    assert.deepEqual(loaded[1].backbone.checkpoint, { path: whole, version: 2, selfContained: true });
    for (const [index, copy] of loaded.entries()) {
      assert.deepEqual(copy.backbone.trainedTensors, ['classifier.3.weight', 'classifier.3.bias']);
      await assertSameOutputs(saved, copy, `fine-tuned ${index}`);
    }
    // Saved again, a model loaded from the self-contained file is small again.
    const again = path.join(dir, 'models', 'tuned-again.safetensors');
    await loaded[1].save(again);
    assert.ok(fs.statSync(again).size < sizes[0] * 1.01, `${fs.statSync(again).size} bytes`);

    const info = parseJson(await runCli(['info', small, '--json']));
    assert.equal(info.selfContained, false);
    assert.deepEqual(info.backbone, { identity: saved.backbone.identity, identityFrom: 'metadata', naming: 'torchvision',
      hint: 'vgg16-test.safetensors', trainedTensors: ['classifier.3.weight', 'classifier.3.bias'] });
    const text = await runCli(['info', whole]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^backbone: +${saved.backbone.identity}$`, 'm'));
    assert.match(text.stdout, /^contained: +yes/m);

    const { app, url } = await startServer({ model: loaded[0] });
    try {
      const served = await json(await fetch(`${url}/v1/model`));
      assert.equal(served.backbone.identity, saved.backbone.identity);
      assert.equal(served.backbone.checkpoint.selfContained, false);
    } finally {
      await app.close();
    }
  } finally {
    saved.dispose();
    for (const copy of loaded) copy.dispose();
  }
});

test('a checkpoint that holds part of the backbone without a reference, or lists tensors it lacks, is E_CHECKPOINT', async () => {
  const saved = await model();
  const file = path.join(dir, 'models', 'edited.safetensors');
  const { writeSafetensors } = await import('../dist/index.js');
  try {
    await saved.save(file);
    const { tensors, metadata } = await readSafetensors(file);
    const { backbone: reference, ...rest } = metadata;
    await writeSafetensors(file, tensors, rest);
    await assert.rejects(VideoRNN.load(file, { backboneWeights: backbone }), assertCode('E_CHECKPOINT', /names no backbone/));
    await writeSafetensors(file, tensors, { ...metadata, backbone: JSON.stringify({ ...JSON.parse(reference), trained: ['features.0.bias'] }) });
    await assert.rejects(VideoRNN.load(file, { backboneWeights: backbone }), assertCode('E_CHECKPOINT', /embedding\.features\.0\.bias is missing/));
    await writeSafetensors(file, tensors, { ...metadata, backbone: JSON.stringify({ ...JSON.parse(reference), hint: '../vgg16.pth' }) });
    await assert.rejects(VideoRNN.load(file, { backboneWeights: backbone }), assertCode('E_CHECKPOINT', /hint .* is not a file name/));
  } finally {
    saved.dispose();
  }
});

test('ranks of a group built from different backbones are refused (E_DISTRIBUTED); the same backbone, or none, passes', async () => {
  const { ModelBackbone } = await import('../dist/model-backbone.js');
  const rank = (identity) => {
    const state = new ModelBackbone();
    if (identity) state.reference = { identity, naming: 'torchvision', hint: 'vgg16.pth' };
    return state;
  };
  const values = async (state) => {
    let sent;
    await state.checkSameOverRanks(async (mine) => { sent = mine; return mine; }, 1);
    return sent;
  };
  // Two ranks: each one's sums are its own values plus the other's.
  const pair = async (first, second) => {
    const other = await values(second);
    return first.checkSameOverRanks(async (mine) => mine.map((value, index) => value + other[index]), 2);
  };
  const a = 'a'.repeat(64);
  const b = `${'a'.repeat(8)}b${'a'.repeat(55)}`;
  await pair(rank(a), rank(a));
  await pair(rank(), rank());
  await assert.rejects(pair(rank(a), rank(b)), assertCode('E_DISTRIBUTED', /different backbones/));
  await assert.rejects(pair(rank(a), rank()), assertCode('E_DISTRIBUTED', /different backbones/));
});
