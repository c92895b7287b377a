// Every failure of decodeVideo/probeVideo is a VideoRNNError with a stable code, and leaves no ffmpeg behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeConcurrency, decodeVideo, probeVideo } from '../dist/index.js';
import {
  descendantProcesses, mpeg4, rejectsWithCode, renderColourSegments, renderGraph, temporaryFolder, throwsWithCode, waitFor,
} from './helpers/media.mjs';

const folder = temporaryFolder(after);
let good; // 12 frames at 6 fps
let busy; // 2 s of video noise: enough data that cutting the file loses frames

before(() => {
  good = renderColourSegments(path.join(folder, 'good.mp4'),
    { names: ['red', 'blue'], seconds: 1, fps: 6, width: 32, height: 32 });
  busy = renderGraph(path.join(folder, 'busy.mp4'), 'testsrc2=s=160x120:r=25:d=2',
    [...mpeg4, '-movflags', '+faststart']);
});

function ffmpegChildren() {
  return descendantProcesses().filter((child) => /ff(mpeg|probe)/.test(child.command));
}

test('a missing file is E_VIDEO_NOT_FOUND, for decode and probe', async () => {
  const missing = path.join(folder, 'no such video.mp4');
  await rejectsWithCode(decodeVideo(missing), 'E_VIDEO_NOT_FOUND');
  await rejectsWithCode(probeVideo(missing), 'E_VIDEO_NOT_FOUND');
  await rejectsWithCode(decodeVideo(path.join(good, 'inside-a-file.mp4')), 'E_VIDEO_NOT_FOUND');
});

test('a file that is not a video is E_VIDEO_DECODE with ffmpeg\'s last message', async () => {
  const text = path.join(folder, 'notes.mp4');
  fs.writeFileSync(text, 'these are notes, not a video\n'.repeat(20));
  const error = await rejectsWithCode(decodeVideo(text), 'E_VIDEO_DECODE');
  assert.match(error.message, /Invalid data found when processing input/);
  assert.match(error.message, /notes\.mp4/);
  await rejectsWithCode(probeVideo(text), 'E_VIDEO_DECODE');
});

test('a file cut before its index is E_VIDEO_DECODE', async () => {
  // The default MP4 layout puts the index (moov) at the end, so the first half cannot even be opened.
  const plain = renderGraph(path.join(folder, 'plain.mp4'), 'testsrc2=s=160x120:r=25:d=2');
  const cut = path.join(folder, 'cut-early.mp4');
  const bytes = fs.readFileSync(plain);
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
  const error = await rejectsWithCode(decodeVideo(cut, { size: 32 }), 'E_VIDEO_DECODE');
  assert.match(error.message, /moov atom not found|Invalid data/);
});

test('a file cut halfway through its frames is E_VIDEO_DECODE, not a short clip', async () => {
  const cut = path.join(folder, 'cut-late.mp4');
  const bytes = fs.readFileSync(busy);
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
  const error = await rejectsWithCode(decodeVideo(cut, { size: 32 }), 'E_VIDEO_DECODE');
  assert.match(error.message, /truncated or damaged \(decoded \d+ of 50 frames\)/);
  assert.match(error.message, /partial file|Invalid|Error/i);
  await rejectsWithCode(decodeVideo(cut, { size: 32, fps: 5 }), 'E_VIDEO_DECODE');
});

test('a video whose frames are all damaged (zero decodable frames) is E_VIDEO_DECODE', async () => {
  // Keep the container intact but overwrite every coded frame (the mdat payload) with noise. H.264
  // keeps its parameters in the header, so the file still probes as a 160x120 video.
  const source = renderGraph(path.join(folder, 'busy-h264.mp4'), 'testsrc2=s=160x120:r=25:d=2',
    ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart']);
  const bytes = Buffer.from(fs.readFileSync(source));
  const start = bytes.indexOf('mdat') + 4;
  let state = 12345;
  for (let index = start; index < bytes.length; index += 1) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  const damaged = path.join(folder, 'damaged.mp4');
  fs.writeFileSync(damaged, bytes);
  assert.equal((await probeVideo(damaged)).frames, 50, 'the container still lists its frames');
  const error = await rejectsWithCode(decodeVideo(damaged), 'E_VIDEO_DECODE');
  assert.match(error.message, /ffmpeg exited with code|no frame could be decoded/);
});

test('an audio-only file is E_VIDEO_DECODE naming the streams it has', async () => {
  // Matroska: an allowed container, so the probe gets as far as the streams (WAV is not a video container).
  const audio = path.join(folder, 'tone.mka');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=d=0.5', audio]);
  const error = await rejectsWithCode(decodeVideo(audio), 'E_VIDEO_DECODE');
  assert.match(error.message, /no video stream \(streams: audio\)/);
  await rejectsWithCode(probeVideo(audio), 'E_VIDEO_DECODE');
});

test('a directory passed as a video is E_VIDEO_DECODE', async () => {
  const directory = path.join(folder, 'a folder.mp4');
  fs.mkdirSync(directory);
  const error = await rejectsWithCode(decodeVideo(directory), 'E_VIDEO_DECODE');
  assert.match(error.message, /is a directory/);
});

test('bad options are E_INVALID_ARGUMENT before any process starts', async () => {
  const cases = [
    [good, { size: 0 }], [good, { size: 1.5 }], [good, { size: '64' }], [good, { fps: 0 }], [good, { fps: -2 }],
    [good, { fps: Number.NaN }], [good, { fps: Infinity }], [good, { maxFrames: 0 }], [good, { frames: 2.5 }],
    [good, { frames: 4, maxFrames: 8 }], [good, { maxframes: 4 }], [good, { signal: {} }], [good, { timeout: 0 }],
    [good, null], [good, []], [good, 'fast'], ['', {}], [42, {}], [undefined, {}],
  ];
  for (const [file, options] of cases) {
    const error = await rejectsWithCode(decodeVideo(file, options), 'E_INVALID_ARGUMENT');
    assert.match(error.message, /^Expected /, `message shape for ${JSON.stringify(options)}`);
  }
  await rejectsWithCode(probeVideo(good, { size: 3 }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(probeVideo(good, { timeout: -1 }), 'E_INVALID_ARGUMENT');
  throwsWithCode(() => decodeConcurrency(0), 'E_INVALID_ARGUMENT');
  assert.deepEqual(ffmpegChildren(), []);
});

test('file names with spaces, quotes, ; $( ) and non-ASCII letters decode, and nothing runs', async (t) => {
  const names = [
    'two words.mp4', 'it\'s "quoted".mp4', 'a;b.mp4', '$(touch pwned).mp4', '`touch pwned2`|x.mp4',
    'Ünïcödé 日本語 видео.mp4', '-i.mp4', 'concat:first.mp4|second.mp4',
  ];
  const workingFolder = temporaryFolder(t);
  for (const name of names) fs.copyFileSync(good, path.join(workingFolder, name));
  const previous = process.cwd();
  process.chdir(workingFolder);
  t.after(() => process.chdir(previous));
  for (const name of names) {
    const clip = await decodeVideo(path.join(workingFolder, name), { size: 8 });
    assert.equal(clip.frames, 12, name);
    assert.equal((await decodeVideo(name, { frames: 2 })).frames, 2, `relative ${name}`);
  }
  for (const folderToCheck of [workingFolder, previous, folder]) {
    const entries = fs.readdirSync(folderToCheck);
    assert.ok(!entries.includes('pwned') && !entries.includes('pwned2'), `a command ran in ${folderToCheck}`);
  }
});

test('an aborted decode rejects with E_ABORTED and leaves no ffmpeg process', async () => {
  // A 1 fps source resampled to 1000 fps keeps ffmpeg busy for many seconds.
  const slow = renderGraph(path.join(folder, 'slow.mp4'), 'color=c=gray:s=32x32:r=1:d=60');
  const controller = new AbortController();
  const decoding = decodeVideo(slow, { fps: 1000, size: 128, maxFrames: 10, signal: controller.signal });
  await waitFor(() => descendantProcesses().some((child) => child.command === 'ffmpeg'), 'ffmpeg to start');
  controller.abort(new Error('user pressed stop'));
  const error = await rejectsWithCode(decoding, 'E_ABORTED');
  assert.equal(error.cause?.message, 'user pressed stop');
  assert.deepEqual(ffmpegChildren(), [], 'ffmpeg is gone (not even a zombie) when the promise settles');
});

test('an already-aborted signal, and an abort while queued, reject without starting ffmpeg', async () => {
  await rejectsWithCode(decodeVideo(good, { signal: AbortSignal.abort() }), 'E_ABORTED');
  const previous = decodeConcurrency();
  decodeConcurrency(1);
  try {
    const slow = path.join(folder, 'slow-queued.mp4');
    renderGraph(slow, 'color=c=gray:s=32x32:r=1:d=60');
    const first = new AbortController();
    const running = decodeVideo(slow, { fps: 1000, size: 64, maxFrames: 4, signal: first.signal });
    const second = new AbortController();
    const queued = decodeVideo(good, { signal: second.signal });
    await waitFor(() => descendantProcesses().some((child) => child.command === 'ffmpeg'), 'the first decode to start');
    second.abort();
    await rejectsWithCode(queued, 'E_ABORTED');
    first.abort();
    await rejectsWithCode(running, 'E_ABORTED');
  } finally {
    decodeConcurrency(previous);
  }
  assert.deepEqual(ffmpegChildren(), []);
});

test('a FIFO is refused with E_VIDEO_DECODE before ffmpeg or ffprobe opens it, instead of hanging', async () => {
  const fifo = path.join(folder, 'never-written.mp4');
  execFileSync('mkfifo', [fifo]);
  const started = Date.now();
  const error = await rejectsWithCode(decodeVideo(fifo), 'E_VIDEO_DECODE');
  assert.match(error.message, /is a FIFO/);
  await rejectsWithCode(probeVideo(fifo), 'E_VIDEO_DECODE');
  assert.ok(Date.now() - started < 2000, `refused at once, not by a timeout (${Date.now() - started} ms)`);
  assert.deepEqual(ffmpegChildren(), []);
});

test('a decode that runs past its timeout is killed', async () => {
  const slow = path.join(folder, 'slow-timeout.mp4');
  renderGraph(slow, 'color=c=gray:s=32x32:r=1:d=60');
  const error = await rejectsWithCode(decodeVideo(slow, { fps: 1000, size: 64, maxFrames: 4, timeout: 700 }),
    'E_VIDEO_DECODE');
  assert.match(error.message, /timed out/);
  assert.deepEqual(ffmpegChildren(), []);
});
