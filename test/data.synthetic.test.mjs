// makeSyntheticDataset: rendered with ffmpeg, deterministic for a seed, variable lengths, and the class
// (the direction of motion) readable from the order of frames.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeSyntheticDataset, VideoFolderDataset } from '../dist/data/index.js';
import { decodeVideo } from '../dist/video/index.js';
import { descendantProcesses, rejectsWithCode, temporaryFolder } from './helpers/media.mjs';

const folder = temporaryFolder(after);
let first;
let second;

before(async () => {
  [first, second] = await Promise.all([
    makeSyntheticDataset(path.join(folder, 'first'), { perClass: 2, seed: 5 }),
    makeSyntheticDataset(path.join(folder, 'second'), { perClass: 2, seed: 5 }),
  ]);
});

/** Centre of the bright square in each frame (red channel above the midpoint between square and background). */
function squareCentres(clip, threshold) {
  const centres = [];
  for (let frame = 0; frame < clip.frames; frame += 1) {
    let sumX = 0;
    let sumY = 0;
    let count = 0;
    for (let y = 0; y < clip.height; y += 1) {
      for (let x = 0; x < clip.width; x += 1) {
        if (clip.data[((frame * clip.height + y) * clip.width + x) * 3] > threshold) {
          sumX += x;
          sumY += y;
          count += 1;
        }
      }
    }
    assert.ok(count > 0, `frame ${frame} shows the square`);
    centres.push({ x: sumX / count, y: sumY / count });
  }
  return centres;
}

test('the dataset lists every clip under class folders sorted by name', () => {
  assert.ok(first instanceof VideoFolderDataset);
  assert.deepEqual(first.classes, ['down', 'left', 'right', 'up']);
  assert.equal(first.size, 8);
  assert.equal(first.fps, 8);
  const samples = Array.from({ length: first.size }, (_, index) => first.sample(index));
  assert.deepEqual(samples.map((sample) => sample.id), [
    'down/down_000.mp4', 'down/down_001.mp4', 'left/left_000.mp4', 'left/left_001.mp4',
    'right/right_000.mp4', 'right/right_001.mp4', 'up/up_000.mp4', 'up/up_001.mp4',
  ]);
  assert.deepEqual(samples.map((sample) => sample.label), [0, 0, 1, 1, 2, 2, 3, 3]);
  for (const sample of samples) assert.ok(fs.statSync(sample.source).size > 0);
  const description = JSON.parse(fs.readFileSync(path.join(folder, 'first', 'synthetic.json'), 'utf8'));
  assert.equal(description.clips.length, 8);
  assert.equal(description.options.seed, 5);
  assert.deepEqual(fs.readdirSync(path.join(folder, 'first', 'left')).sort(), ['left_000.mp4', 'left_001.mp4'],
    'no temporary files are left');
});

test('VideoFolderDataset.open over the folder gives the same samples', async () => {
  const reopened = await VideoFolderDataset.open(first.root);
  assert.deepEqual(reopened.classes, first.classes);
  for (let index = 0; index < first.size; index += 1) assert.deepEqual(reopened.sample(index), first.sample(index));
});

test('the same seed renders the same bytes; another seed does not', async () => {
  for (let index = 0; index < first.size; index += 1) {
    assert.ok(fs.readFileSync(first.sample(index).source).equals(fs.readFileSync(second.sample(index).source)),
      `file ${first.sample(index).id}`);
  }
  const [decodedFirst, decodedSecond] = await Promise.all([decodeVideo(first.sample(3).source),
    decodeVideo(second.sample(3).source)]);
  assert.deepEqual(decodedFirst, decodedSecond, 'decoded frames match');
  const other = await makeSyntheticDataset(path.join(folder, 'other-seed'), { perClass: 1, seed: 6, classes: ['left'] });
  assert.ok(!fs.readFileSync(other.sample(0).source).equals(fs.readFileSync(first.sample(2).source)));
});

test('clips have varied lengths in the range, and decode to all their frames with or without fps: 8', async () => {
  const lengths = [];
  for (let index = 0; index < first.size; index += 1) {
    const clip = await decodeVideo(first.sample(index).source);
    assert.equal(clip.frames, first.clips[index].frames, first.sample(index).id);
    assert.equal(clip.width, 64);
    assert.equal(clip.height, 64);
    lengths.push(clip.frames);
  }
  assert.ok(lengths.every((length) => length >= 6 && length <= 14), `lengths ${lengths}`);
  assert.ok(new Set(lengths).size > 2, `lengths vary: ${lengths}`);
  const resampled = await decodeVideo(first.sample(5).source, { fps: 8 });
  assert.equal(resampled.frames, first.clips[5].frames);
});

test('the square moves steadily in the class direction and crosses much of the frame', async () => {
  const free = 64 - first.clips[0].squareSize;
  for (let index = 0; index < first.size; index += 1) {
    const described = first.clips[index];
    const clip = await decodeVideo(first.sample(index).source);
    const centres = squareCentres(clip, (described.background + described.foreground) / 2);
    const [moving, fixed, sign] = {
      left: ['x', 'y', -1], right: ['x', 'y', 1], up: ['y', 'x', -1], down: ['y', 'x', 1],
    }[described.motion];
    for (let frame = 1; frame < centres.length; frame += 1) {
      const step = (centres[frame][moving] - centres[frame - 1][moving]) * sign;
      assert.ok(step > 0.5, `${described.id} frame ${frame}: moved ${step} px along ${moving}`);
      assert.ok(Math.abs(centres[frame][fixed] - centres[0][fixed]) < 1, `${described.id} stays on its line`);
    }
    const travel = (centres.at(-1)[moving] - centres[0][moving]) * sign;
    assert.ok(travel >= 0.5 * free, `${described.id} travels ${travel} of ${free} px`);
  }
});

test('size, classes and length options are honoured', async () => {
  const small = await makeSyntheticDataset(path.join(folder, 'small'),
    { classes: ['right', 'left'], perClass: 2, size: 32, minFrames: 3, maxFrames: 4, seed: 1 });
  assert.deepEqual(small.classes, ['left', 'right']);
  assert.equal(small.size, 4);
  for (let index = 0; index < small.size; index += 1) {
    const clip = await decodeVideo(small.sample(index).source);
    assert.equal(clip.width, 32);
    assert.ok(clip.frames >= 3 && clip.frames <= 4);
  }
});

test('bad options are E_INVALID_ARGUMENT', async () => {
  const target = path.join(folder, 'never');
  for (const options of [{ classes: ['sideways'] }, { classes: [] }, { classes: ['left', 'left'] }, { size: 33 },
    { size: 8 }, { minFrames: 1 }, { minFrames: 8, maxFrames: 6 }, { perClass: 0 }, { fps: 0 }, { seed: -1 },
    { perclass: 3 }, { signal: 'stop' }]) {
    await rejectsWithCode(makeSyntheticDataset(target, options), 'E_INVALID_ARGUMENT');
  }
  await rejectsWithCode(makeSyntheticDataset('', {}), 'E_INVALID_ARGUMENT');
  assert.ok(!fs.existsSync(target), 'nothing was written');
});

test('aborting stops rendering with E_ABORTED, leaving no partial files and no ffmpeg', async () => {
  const controller = new AbortController();
  const target = path.join(folder, 'aborted');
  const rendering = makeSyntheticDataset(target, { perClass: 50, signal: controller.signal });
  setTimeout(() => controller.abort(), 300);
  await rejectsWithCode(rendering, 'E_ABORTED');
  const leftovers = fs.readdirSync(target, { recursive: true }).filter((name) => String(name).includes('.partial'));
  assert.deepEqual(leftovers, []);
  assert.ok(!fs.existsSync(path.join(target, 'synthetic.json')));
  assert.deepEqual(descendantProcesses().filter((child) => child.command === 'ffmpeg'), []);
});
