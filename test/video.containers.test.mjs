// Each container of the allow-list decodes a small clip as it always did; formats outside it are
// refused before ffmpeg reads them, and widening the list (option, videoLimits, environment) admits them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { decodeVideo, defaultVideoFormats, probeVideo, videoLimits } from '../dist/index.js';
import { resetVideoLimits } from '../dist/video/limits.js';
import { frameColours, lavfiColour, rejectsWithCode, runFfmpeg, temporaryFolder } from './helpers/media.mjs';

const folder = temporaryFolder(after);
const order = ['red', 'green', 'blue', 'white'];
// 1 s per colour at 10 fps, 64x48: frame n shows colour floor(n / 10).
const segments = order.map((name, index) => `color=c=${lavfiColour(name)}:s=64x48:r=10:d=1[s${index}]`).join(';') +
  `;${order.map((_, index) => `[s${index}]`).join('')}concat=n=4:v=1:a=0`;
const graph = `${segments},format=yuv420p[out0]`;
// libtheora drops a frame identical to the one before it; a little temporal noise keeps all 40.
const noisyGraph = `${segments},noise=alls=6:allf=t,format=yuv420p[out0]`;

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0'];
// The demuxer each file must be read with (ffprobe's format_name), and how it is written.
const containers = [
  { file: 'clip.mp4', demuxer: 'mov,mp4,m4a,3gp,3g2,mj2', args: x264 },
  { file: 'clip.mov', demuxer: 'mov,mp4,m4a,3gp,3g2,mj2', args: ['-c:v', 'mpeg4', '-q:v', '2'] },
  { file: 'clip.mkv', demuxer: 'matroska,webm', args: x264 },
  { file: 'clip.webm', demuxer: 'matroska,webm', args: ['-c:v', 'libvpx', '-b:v', '1M', '-deadline', 'realtime'] },
  { file: 'clip.avi', demuxer: 'avi', args: ['-c:v', 'mpeg4', '-q:v', '2'] },
  { file: 'clip.ts', demuxer: 'mpegts', args: x264 },
  { file: 'clip.mpg', demuxer: 'mpeg', args: ['-c:v', 'mpeg2video', '-q:v', '2', '-f', 'vob'] },
  { file: 'clip.flv', demuxer: 'flv', args: x264 },
  { file: 'clip.ogv', demuxer: 'ogg', args: ['-c:v', 'libtheora', '-q:v', '8'], graph: noisyGraph },
  { file: 'clip.h264', demuxer: 'h264', args: x264 },
  { file: 'clip.hevc', demuxer: 'hevc', args: ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error:bframes=0'] },
];

before(() => {
  for (const container of containers) {
    runFfmpeg(['-f', 'lavfi', '-i', container.graph ?? graph, ...container.args, path.join(folder, container.file)]);
  }
});

after(() => resetVideoLimits());

function formatName(file) {
  return execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=format_name', '-of', 'default=nw=1:nk=1', file], { encoding: 'utf8' }).trim();
}

test('the default allow-list is the documented one', () => {
  assert.deepEqual([...defaultVideoFormats], ['mov', 'matroska', 'avi', 'mpegts', 'mpeg', 'flv', 'ogg', 'h264', 'hevc']);
  assert.deepEqual([...videoLimits().formats], [...defaultVideoFormats]);
});

for (const container of containers) {
  test(`${container.file} (${container.demuxer}) decodes every frame, in order, and samples as before`, async () => {
    const file = path.join(folder, container.file);
    assert.equal(formatName(file), container.demuxer, 'ffprobe reads it with the expected demuxer');
    const all = await decodeVideo(file, { size: 32 });
    assert.equal(all.frames, 40, 'every frame');
    assert.deepEqual(frameColours(all), order.flatMap((name) => Array(10).fill(name)));
    assert.deepEqual(frameColours(await decodeVideo(file, { frames: 4, size: 32 })), order);
    assert.deepEqual(frameColours(await decodeVideo(file, { maxFrames: 4, size: 32 })), order);
  });
}

test('formats outside the list are refused before decoding; widening admits them', async () => {
  const gif = path.join(folder, 'clip.gif');
  runFfmpeg(['-f', 'lavfi', '-i', graph, gif]);
  const png = path.join(folder, 'still.png');
  runFfmpeg(['-f', 'lavfi', '-i', `color=c=${lavfiColour('red')}:s=64x48:d=0.1`, '-frames:v', '1', png]);
  for (const file of [gif, png]) {
    const error = await rejectsWithCode(decodeVideo(file), 'E_VIDEO_DECODE');
    assert.match(error.message, /not among the allowed formats/);
    await rejectsWithCode(probeVideo(file), 'E_VIDEO_DECODE');
  }
  // Per call: "default" stands for the built-in list.
  assert.equal((await decodeVideo(gif, { formats: ['default', 'gif'], size: 32 })).frames, 40);
  assert.equal((await probeVideo(gif, { formats: ['gif'] })).width, 64);
  // Process-wide, and from the environment; a call's own list narrows again.
  videoLimits({ formats: ['default', 'gif'] });
  assert.deepEqual(frameColours(await decodeVideo(gif, { frames: 4, size: 32 })), order);
  await rejectsWithCode(decodeVideo(gif, { formats: ['mov'] }), 'E_VIDEO_DECODE');
  resetVideoLimits();
  await rejectsWithCode(decodeVideo(gif), 'E_VIDEO_DECODE');
  process.env.VIDEO_RNN_FORMATS = 'default,gif';
  try {
    assert.equal((await decodeVideo(gif, { size: 32 })).frames, 40);
  } finally {
    delete process.env.VIDEO_RNN_FORMATS;
  }
  // A narrowed list refuses even an MP4.
  await rejectsWithCode(decodeVideo(path.join(folder, 'clip.mkv'), { formats: ['mov'] }), 'E_VIDEO_DECODE');
});

test('bad limits are E_INVALID_ARGUMENT', async () => {
  const file = path.join(folder, 'clip.mp4');
  for (const options of [{ formats: [] }, { formats: ['mov;rm -rf'] }, { formats: 'mov' }, { maxClipFrames: 0 },
    { maxPixels: 1.5 }, { maxVideoSeconds: -1 }]) {
    await rejectsWithCode(decodeVideo(file, options), 'E_INVALID_ARGUMENT');
  }
  await rejectsWithCode(probeVideo(file, { maxClipFrames: 5 }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(decodeVideo(file, { frames: 50, maxClipFrames: 20 }), 'E_INVALID_ARGUMENT');
  assert.throws(() => videoLimits({ formats: ['a b'] }), { code: 'E_INVALID_ARGUMENT' });
  assert.throws(() => videoLimits({ maxFrames: 3 }), { code: 'E_INVALID_ARGUMENT' });
});

test('each limit comes from the call, else videoLimits(), else its environment variable, else the default', async () => {
  const file = path.join(folder, 'clip.mp4'); // 40 frames of 64x48, 4 s
  const cases = [
    { variable: 'VIDEO_RNN_MAX_CLIP_FRAMES', key: 'maxClipFrames', refuses: '30', admits: 40, message: /more than 30 frames/ },
    { variable: 'VIDEO_RNN_MAX_PIXELS', key: 'maxPixels', refuses: '3000', admits: 64 * 48, message: /maxPixels/ },
    { variable: 'VIDEO_RNN_MAX_VIDEO_SECONDS', key: 'maxVideoSeconds', refuses: '2', admits: 5, message: /maxVideoSeconds/ },
  ];
  assert.equal(videoLimits().maxClipFrames, 3000);
  assert.equal(videoLimits().maxPixels, 7680 * 4320);
  assert.equal(videoLimits().maxVideoSeconds, null);
  for (const { variable, key, refuses, admits, message } of cases) {
    process.env[variable] = refuses;
    try {
      assert.match((await rejectsWithCode(decodeVideo(file, { size: 16 }), 'E_VIDEO_DECODE')).message, message, variable);
      assert.equal((await decodeVideo(file, { size: 16, [key]: admits })).frames, 40, `${key} in the call wins`);
      videoLimits({ [key]: admits });
      assert.equal((await decodeVideo(file, { size: 16 })).frames, 40, `videoLimits({ ${key} }) wins over ${variable}`);
      resetVideoLimits();
      process.env[variable] = 'many';
      await assert.rejects(decodeVideo(file), { code: 'E_INVALID_ARGUMENT' }, `a bad ${variable} is named`);
    } finally {
      delete process.env[variable];
      resetVideoLimits();
    }
  }
});
