import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backboneIdentity, loadBackbone, loadBackboneWeights, VGG16_BACKBONE_TENSORS, writeSafetensors } from '../dist/weights/index.js';
import {
  assertRejectsWith, assertTensorsEqual, buildSafetensors, generate, removeDirectory, temporaryDirectory,
} from './weights.fixtures.mjs';

// One full-size random VGG16 (torchvision.models.vgg16(), seed 0) in each format: about 550 MB
// per file, written to a temporary folder and removed at the end.
let directory;
let expected;
let identity;
let backboneExpected;
let loaded;

before(() => {
  directory = temporaryDirectory('backbone');
  ({ expected, identity } = generate('vgg16', directory));
  backboneExpected = Object.fromEntries(Object.entries(expected).filter(([name]) => !name.startsWith('classifier.6.')));
});

after(() => removeDirectory(directory));

test('VGG16_BACKBONE_TENSORS lists torchvision\'s vgg16 state_dict without fc8, in order', () => {
  assert.deepEqual(VGG16_BACKBONE_TENSORS.map((spec) => spec.name), Object.keys(backboneExpected));
  for (const spec of VGG16_BACKBONE_TENSORS) assert.deepEqual([...spec.shape], backboneExpected[spec.name].shape, spec.name);
  assert.ok(Object.isFrozen(VGG16_BACKBONE_TENSORS) && Object.isFrozen(VGG16_BACKBONE_TENSORS[0].shape));
});

// The identity is Python's, computed from README's definition over torchvision's state_dict: every file
// form and naming of the same weights has that one identity.
for (const [label, file, naming] of [['zip .pth', 'vgg16.zip.pth', 'torchvision'], ['legacy .pth', 'vgg16.legacy.pth', 'torchvision'],
  ['timm-named .safetensors', 'vgg16.timm.safetensors', 'timm']]) {
  test(`loads the ${label} exactly as torchvision wrote it, with the backbone identity Python computes`, async (context) => {
    const started = process.hrtime.bigint();
    const { tensors, reference } = await loadBackbone(join(directory, file));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    context.diagnostic(`${file}: ${seconds.toFixed(2)} s with the identity`);
    assert.deepEqual([...tensors.keys()], Object.keys(backboneExpected), 'backbone order, fc8 dropped');
    assertTensorsEqual(tensors, backboneExpected, file);
    assert.deepEqual(reference, { identity, naming, hint: file });
    loaded = tensors;
    rmSync(join(directory, file));
  });
}

async function writeVariant(name, edit) {
  const tensors = new Map(loaded);
  edit(tensors);
  const path = join(directory, name);
  await writeSafetensors(path, tensors, {});
  return path;
}

test('accepts a "module." prefix and ignores fc8 (safetensors, torchvision names: the same identity)', async () => {
  const path = await writeVariant('module.safetensors', (tensors) => {
    for (const [name, tensor] of [...tensors]) {
      tensors.delete(name);
      tensors.set(`module.${name}`, tensor);
    }
    tensors.set('module.classifier.6.weight', { shape: [3, 4096], data: new Float32Array(3 * 4096) });
    tensors.set('module.classifier.6.bias', { shape: [3], data: new Float32Array(3) });
  });
  const { tensors, reference } = await loadBackbone(path);
  assertTensorsEqual(tensors, backboneExpected, 'module. prefix');
  assert.equal(reference.identity, identity, 'a torchvision-named safetensors file has the same identity');
  rmSync(path);
});

test('the identity does not depend on the order tensors come in, and changes with one value', () => {
  assert.equal(backboneIdentity(new Map([...loaded].reverse())), identity);
  const data = new Float32Array(loaded.get('features.28.bias').data);
  data[7] = Math.fround(data[7] + 1e-3);
  const changed = new Map(loaded);
  changed.set('features.28.bias', { shape: [512], data });
  assert.notEqual(backboneIdentity(changed), identity);
});

test('a wrong shape is E_WEIGHTS_SHAPE naming the tensor and both shapes', async () => {
  const path = await writeVariant('wrong-shape.safetensors', (tensors) => {
    tensors.set('features.10.weight', { shape: [256, 128, 1, 9], data: tensors.get('features.10.weight').data });
  });
  await assertRejectsWith(loadBackboneWeights(path), 'E_WEIGHTS_SHAPE',
    /features\.10\.weight has shape \[256, 128, 1, 9\], expected \[256, 128, 3, 3\]/, 'wrong shape');
  rmSync(path);
});

test('a missing tensor is E_WEIGHTS_SHAPE naming it', async () => {
  const path = await writeVariant('missing.safetensors', (tensors) => tensors.delete('classifier.3.bias'));
  await assertRejectsWith(loadBackboneWeights(path), 'E_WEIGHTS_SHAPE', /classifier\.3\.bias is missing \(expected shape \[4096\]\)/, 'missing');
  rmSync(path);
});

test('small or foreign files: E_WEIGHTS_SHAPE when readable, E_WEIGHTS_FORMAT when not', async () => {
  const small = join(directory, 'small.safetensors');
  await writeSafetensors(small, new Map([['features.0.weight', { shape: [64, 3, 3, 3], data: new Float32Array(1728) }]]));
  await assertRejectsWith(loadBackboneWeights(small), 'E_WEIGHTS_SHAPE', /features\.0\.bias is missing.*and 28 more problems/, 'small');
  const text = join(directory, 'notes.txt');
  writeFileSync(text, 'not weights at all');
  await assertRejectsWith(loadBackboneWeights(text), 'E_WEIGHTS_FORMAT', /not a weights file/, 'text');
  const broken = join(directory, 'broken.safetensors');
  writeFileSync(broken, buildSafetensors('{"features.0.weight": 1}'));
  await assertRejectsWith(loadBackboneWeights(broken), 'E_WEIGHTS_FORMAT', undefined, 'broken');
});
