// VideoFolderDataset: root/<class>/<video>, classes in codepoint order, videos filtered by extension.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoFolderDataset } from '../dist/data/index.js';
import { decodeVideo } from '../dist/video/index.js';
import { rejectsWithCode, renderColourSegments, temporaryFolder, throwsWithCode } from './helpers/media.mjs';

const folder = temporaryFolder(after);
let video;

before(() => {
  video = renderColourSegments(path.join(folder, 'source.mp4'),
    { names: ['red', 'blue'], seconds: 0.5, fps: 8, width: 16, height: 16 });
});

function place(root, files) {
  for (const file of files) {
    const full = path.join(root, ...file.split('/'));
    fs.mkdirSync(path.dirname(full), { recursive: true });
    if (/\.(mp4|avi|MP4|webm)$/.test(file)) fs.copyFileSync(video, full);
    else fs.writeFileSync(full, 'not a video');
  }
  return root;
}

test('classes are sub-folders in codepoint order; videos are found recursively, sorted, filtered', async () => {
  const root = place(path.join(folder, 'layout'), [
    'walk/b.mp4', 'walk/a.mp4', 'walk/notes.txt', 'walk/.hidden.mp4', 'walk/outdoor/c.avi',
    'Run/x.MP4', 'Run/thumbnail.jpg', 'jump/y.webm', '.cache/z.mp4', 'stray.mp4',
  ]);
  const dataset = await VideoFolderDataset.open(root);
  assert.deepEqual(dataset.classes, ['Run', 'jump', 'walk'], 'uppercase sorts first, hidden folders are skipped');
  assert.equal(dataset.size, 5);
  const samples = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index));
  assert.deepEqual(samples.map((sample) => sample.id), ['Run/x.MP4', 'jump/y.webm', 'walk/a.mp4', 'walk/b.mp4', 'walk/outdoor/c.avi']);
  assert.deepEqual(samples.map((sample) => sample.label), [0, 1, 2, 2, 2]);
  for (const sample of samples) {
    assert.equal(sample.source, path.join(root, ...sample.id.split('/')));
    assert.ok(path.isAbsolute(sample.source));
  }
  assert.deepEqual(dataset.classCounts(), [1, 1, 3]);
  const clip = await decodeVideo(samples[2].source);
  assert.equal(clip.frames, 8, 'the samples are real, decodable videos');
});

test('a relative root gives the same ids and absolute sources', async () => {
  const root = place(path.join(folder, 'relative'), ['a/one.mp4', 'b/two.mp4']);
  const relative = path.relative(process.cwd(), root);
  const dataset = await VideoFolderDataset.open(relative);
  assert.equal(dataset.root, root);
  assert.deepEqual([dataset.sample(0).id, dataset.sample(1).id], ['a/one.mp4', 'b/two.mp4']);
});

test('the extensions option narrows the accepted files', async () => {
  const root = place(path.join(folder, 'extensions'), ['a/one.mp4', 'a/two.webm', 'b/three.webm']);
  const dataset = await VideoFolderDataset.open(root, { extensions: ['webm'] });
  assert.equal(dataset.size, 2);
  assert.deepEqual(dataset.sample(0).id, 'a/two.webm');
});

test('empty classes are reported by name, unless allowed', async () => {
  const root = place(path.join(folder, 'empty-classes'), ['full/a.mp4', 'empty/readme.txt', 'also-empty/.keep']);
  const error = await rejectsWithCode(VideoFolderDataset.open(root), 'E_INVALID_ARGUMENT');
  assert.match(error.message, /2 problems/);
  assert.match(error.message, /class folder "also-empty" holds no video/);
  assert.match(error.message, /class folder "empty" holds no video/);
  const allowed = await VideoFolderDataset.open(root, { allowEmptyClasses: true });
  assert.deepEqual(allowed.classes, ['also-empty', 'empty', 'full']);
  assert.equal(allowed.size, 1);
  assert.equal(allowed.sample(0).label, 2);
});

test('a missing root, a file as root, no class folders and bad options are errors with codes', async () => {
  await rejectsWithCode(VideoFolderDataset.open(path.join(folder, 'does-not-exist')), 'E_DATASET_NOT_FOUND');
  await rejectsWithCode(VideoFolderDataset.open(video), 'E_INVALID_ARGUMENT');
  const flat = place(path.join(folder, 'flat'), ['only.mp4']);
  const error = await rejectsWithCode(VideoFolderDataset.open(flat), 'E_INVALID_ARGUMENT');
  assert.match(error.message, /no class folders/);
  await rejectsWithCode(VideoFolderDataset.open(''), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(VideoFolderDataset.open(flat, { extensions: [] }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(VideoFolderDataset.open(flat, { allowEmptyClasses: 'yes' }), 'E_INVALID_ARGUMENT');
});

test('sample() checks its index', async () => {
  const root = place(path.join(folder, 'indices'), ['a/one.mp4']);
  const dataset = await VideoFolderDataset.open(root);
  throwsWithCode(() => dataset.sample(1), 'E_INVALID_ARGUMENT');
  throwsWithCode(() => dataset.sample(-1), 'E_INVALID_ARGUMENT');
  throwsWithCode(() => dataset.sample(0.5), 'E_INVALID_ARGUMENT');
  assert.throws(() => { dataset.classes.push('extra'); }, TypeError, 'classes cannot be changed from outside');
});
