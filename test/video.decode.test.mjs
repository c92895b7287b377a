// decodeVideo and probeVideo on real videos whose content is known frame by frame.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { decodeVideo, probeVideo } from '../dist/video/index.js';
import {
  assertColour, colours, frameColours, lavfiColour, nearestColour, pixel, renderColourSegments, renderGraph, runFfmpeg,
  temporaryFolder,
} from './helpers/media.mjs';

const folder = temporaryFolder(after);
let segments; // red, green, blue, white: 1 s each at 10 fps, 64x48, so frame n is from second floor(n / 10)

before(() => {
  segments = renderColourSegments(path.join(folder, 'segments.mp4'),
    { names: ['red', 'green', 'blue', 'white'], seconds: 1, fps: 10, width: 64, height: 48 });
});

function assertClipShape(clip, frames, width, height) {
  assert.equal(clip.frames, frames, 'frame count');
  assert.equal(clip.width, width, 'width');
  assert.equal(clip.height, height, 'height');
  assert.ok(clip.data instanceof Uint8Array, 'data is a Uint8Array');
  assert.equal(clip.data.length, frames * width * height * 3, 'data length is frames x height x width x 3');
}

test('probeVideo reports duration, fps, size and frame count', async () => {
  const info = await probeVideo(segments);
  assert.equal(info.frames, 40);
  assert.equal(info.fps, 10);
  assert.equal(info.width, 64);
  assert.equal(info.height, 48);
  assert.ok(Math.abs(info.duration - 4) < 0.05, `duration ${info.duration}`);
});

test('without options every frame comes back at its own size, colours within codec tolerance', async () => {
  const clip = await decodeVideo(segments);
  assertClipShape(clip, 40, 64, 48);
  for (let frame = 0; frame < 40; frame += 1) {
    const expected = ['red', 'green', 'blue', 'white'][Math.floor(frame / 10)];
    for (const [x, y] of [[32, 24], [3, 3], [60, 44]]) assertColour(pixel(clip, frame, x, y), expected, `frame ${frame} (${x},${y})`);
  }
});

test('fps resamples the stream: 2 fps over 4 s gives 8 frames, two per colour', async () => {
  const clip = await decodeVideo(segments, { fps: 2 });
  assertClipShape(clip, 8, 64, 48);
  const expected = ['red', 'red', 'green', 'green', 'blue', 'blue', 'white', 'white'];
  expected.forEach((name, frame) => assertColour(pixel(clip, frame, 32, 24), name, `frame ${frame}`));
  assert.equal((await decodeVideo(segments, { fps: 4 })).frames, 16);
  assert.equal((await decodeVideo(segments, { fps: 2.5 })).frames, 10);
});

test('frames: N gives exactly N frames spread over the whole video', async () => {
  const four = await decodeVideo(segments, { frames: 4 });
  assertClipShape(four, 4, 64, 48);
  assert.deepEqual(frameColours(four), ['red', 'green', 'blue', 'white']);
  for (const count of [1, 3, 7, 39, 40]) {
    const clip = await decodeVideo(segments, { frames: count, size: 16 });
    assertClipShape(clip, count, 16, 16);
    const seen = frameColours(clip);
    if (count > 1) {
      assert.equal(seen[0], 'red', `frames ${count}: first frame is from the start`);
      assert.equal(seen.at(-1), 'white', `frames ${count}: last frame is from the end`);
    }
  }
  assert.deepEqual(frameColours(await decodeVideo(segments, { frames: 1 })), ['blue'], 'one frame is the middle one');
});

test('frames: N longer than the video repeats frames in order', async () => {
  const clip = await decodeVideo(segments, { frames: 100, size: 8 });
  assertClipShape(clip, 100, 8, 8);
  const seen = frameColours(clip);
  const order = ['red', 'green', 'blue', 'white'];
  for (let index = 1; index < seen.length; index += 1) {
    assert.ok(order.indexOf(seen[index]) >= order.indexOf(seen[index - 1]), `frame ${index} goes back in time`);
  }
  for (const name of order) {
    const count = seen.filter((seenName) => seenName === name).length;
    assert.ok(Math.abs(count - 25) <= 1, `${name} appears ${count} times`);
  }
});

test('maxFrames caps by spreading over the whole video, not by taking the first frames', async () => {
  const capped = await decodeVideo(segments, { maxFrames: 4 });
  assertClipShape(capped, 4, 64, 48);
  assert.deepEqual(frameColours(capped), ['red', 'green', 'blue', 'white']);
  assert.equal((await decodeVideo(segments, { maxFrames: 100, size: 8 })).frames, 40, 'a cap above the length keeps all');
  const resampled = await decodeVideo(segments, { fps: 2, maxFrames: 4 });
  assert.deepEqual(frameColours(resampled), ['red', 'green', 'blue', 'white']);
});

test('fps then frames: N picks from the resampled stream', async () => {
  // fps 1 gives one frame per colour; 3 spread over 4 takes the first, the third and the last.
  const clip = await decodeVideo(segments, { fps: 1, frames: 3 });
  assert.deepEqual(frameColours(clip), ['red', 'blue', 'white']);
});

test('a 16:9 video is resized on its shorter side and centre-cropped', async () => {
  // 320x180 with red left of x=100, green to x=220, blue after. Halving gives 160x90 and the centre
  // square starts at x=35: red until output column 15, green to 75, blue to 90. Squashing the whole
  // frame into 90x90 would instead put red up to column 28 and blue from column 62.
  const wide = renderGraph(path.join(folder, 'wide.mp4'),
    `color=c=${lavfiColour('red')}:s=320x180:r=5:d=1[base];color=c=${lavfiColour('green')}:s=120x180:r=5:d=1[middle];` +
    `color=c=${lavfiColour('blue')}:s=100x180:r=5:d=1[right];` +
    '[base][middle]overlay=x=100:y=0[partial];' +
    '[partial][right]overlay=x=220:y=0[out0]');
  const clip = await decodeVideo(wide, { size: 90 });
  assertClipShape(clip, 5, 90, 90);
  for (const y of [2, 45, 87]) {
    for (let x = 0; x < 90; x += 1) {
      if (Math.abs(x - 15) <= 3 || Math.abs(x - 75) <= 3) continue; // edges blur in 4:2:0
      const expected = x < 15 ? 'red' : x < 75 ? 'green' : 'blue';
      assertColour(pixel(clip, 2, x, y), expected, `column ${x} row ${y}`);
    }
  }
});

test('a portrait video is cropped vertically', async () => {
  // 180x320 with black above y=100 and below y=220: after 0.5x, rows 15..75 of the 90x90 crop are white.
  const tall = renderGraph(path.join(folder, 'tall.mp4'),
    `color=c=${lavfiColour('black')}:s=180x320:r=5:d=1[base];color=c=${lavfiColour('white')}:s=180x120:r=5:d=1[band];` +
    '[base][band]overlay=x=0:y=100[out0]');
  const clip = await decodeVideo(tall, { size: 90 });
  assertClipShape(clip, 5, 90, 90);
  for (let y = 0; y < 90; y += 1) {
    if (Math.abs(y - 15) <= 3 || Math.abs(y - 75) <= 3) continue;
    assertColour(pixel(clip, 0, 45, y), y >= 15 && y < 75 ? 'white' : 'black', `row ${y}`);
  }
});

test('rotation metadata is applied: a sideways-stored video comes out upright, and probes that way', async () => {
  // Stored 64x32 with red on the left and blue on the right, tagged as rotated by 90 degrees.
  const stored = renderGraph(path.join(folder, 'stored.mp4'),
    `color=c=${lavfiColour('red')}:s=64x32:r=5:d=1[base];color=c=${lavfiColour('blue')}:s=32x32:r=5:d=1[half];` +
    '[base][half]overlay=x=32:y=0[out0]');
  const rotated = path.join(folder, 'rotated.mp4');
  // ffmpeg 6 and later write the display matrix from -display_rotation (an input option) and ignore
  // the old rotate tag when writing; 5.1 knows only the tag.
  try {
    runFfmpeg(['-display_rotation', '90', '-i', stored, '-c', 'copy', rotated]);
  } catch {
    runFfmpeg(['-i', stored, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', rotated]);
  }
  const info = await probeVideo(rotated);
  assert.deepEqual([info.width, info.height], [32, 64]);
  const clip = await decodeVideo(rotated);
  assertClipShape(clip, 5, 32, 64);
  const halves = [nearestColour(pixel(clip, 0, 16, 12)), nearestColour(pixel(clip, 0, 16, 52))];
  assert.deepEqual(halves.sort(), ['blue', 'red'], 'the left and right halves are now above each other');
  assert.equal(nearestColour(pixel(clip, 0, 4, 12)), nearestColour(pixel(clip, 0, 28, 12)), 'each half spans the width');
});

test('a container without a frame count in its header (Matroska) is counted', async () => {
  const matroska = renderColourSegments(path.join(folder, 'segments.mkv'),
    { names: ['red', 'blue', 'green'], seconds: 2, fps: 6, width: 32, height: 32, outputArgs: ['-c:v', 'ffv1', '-pix_fmt', 'gbrp'],
      sourceFormat: 'gbrp' });
  const info = await probeVideo(matroska);
  assert.equal(info.frames, 36);
  const clip = await decodeVideo(matroska, { frames: 3 });
  assert.deepEqual(frameColours(clip), ['red', 'blue', 'green']);
  // ffv1 in RGB is lossless, so the colours come back exactly.
  assert.deepEqual(pixel(clip, 0, 5, 5), colours.red);
});

test('concurrent decodes each get their own frames', async () => {
  const requests = [{ frames: 4 }, { fps: 2 }, { maxFrames: 4, size: 12 }, { frames: 2 }, { fps: 1 }];
  const clips = await Promise.all(requests.map((options) => decodeVideo(segments, options)));
  assert.deepEqual(clips.map((clip) => clip.frames), [4, 8, 4, 2, 4]);
  assert.deepEqual(frameColours(clips[3]), ['red', 'white']);
  assert.deepEqual(frameColours(clips[4]), ['red', 'green', 'blue', 'white']);
});
