// Files made to turn the decoder against the host: playlists and lists naming other files or the
// network, a 0.9 MB file of 72,000 frames, a header that understates its length, pictures larger
// than allowed, junk and a FIFO. Each ends with a coded error or the right frames, nothing is read
// but the named file, and decoding still works afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeVideo, probeVideo } from '../dist/index.js';
import { checkBeforeDecoding } from '../dist/video/limits.js';
import {
  connectionCounter, dashManifest, ffconcatList, hlsPlaylist, understateMp4,
} from './helpers/hostile.mjs';
import {
  descendantProcesses, frameColours, lavfiColour, pixel, rejectsWithCode, renderColourSegments, runFfmpeg, temporaryFolder,
} from './helpers/media.mjs';

const folder = temporaryFolder(after);
const uploads = path.join(folder, 'uploads');
let counter;
let other; // a video the playlists point at: decoding it would mean the playlist was followed
let segments; // red, green, blue, white: 2 s each at 30 fps, 32x32 (240 frames)
let long; // 16x16, 120 fps, 600 s: 72,000 frames; the brightness steps every 75 s (8 levels)

before(async () => {
  fs.mkdirSync(uploads);
  counter = await connectionCounter();
  other = renderColourSegments(path.join(folder, 'other.mp4'),
    { names: ['green'], seconds: 1, fps: 10, width: 32, height: 32 });
  segments = renderColourSegments(path.join(folder, 'segments.mp4'),
    { names: ['red', 'green', 'blue', 'white'], seconds: 2, fps: 30, width: 32, height: 32,
      outputArgs: ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-pix_fmt', 'yuv420p', '-use_editlist', '0'] });
  long = path.join(folder, 'long.mp4');
  runFfmpeg(['-f', 'lavfi', '-i', "color=c=gray:s=16x16:r=120:d=600,geq=lum='16+32*floor(T/75)':cb=128:cr=128",
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '51', long]);
});

after(() => counter?.close());

function write(name, content) {
  const file = path.join(uploads, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

function ffmpegChildren() {
  return descendantProcesses().filter((child) => /ff(mpeg|probe)/.test(child.command));
}

/** Peak resident memory of this process (VmHWM), in MB. */
function peakRssMB() {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
}

/** A refusal of the container: the code, and the message that names how to widen the list. */
async function refusedFormat(promise, format) {
  const error = await rejectsWithCode(promise, 'E_VIDEO_DECODE');
  assert.match(error.message, /not among the allowed formats/, error.message);
  if (format !== undefined) assert.match(error.message, new RegExp(`\\(${format}\\)`), error.message);
  return error;
}

// ffmpeg 5.1 detects HLS from the content of any file, and the allow-list refuses it; ffmpeg 6.1 and
// later detect it only in files named .m3u8, .m3u or .hls, so an extension-less upload is then no
// known format at all. Either way it ends in E_VIDEO_DECODE before anything it names is opened.
async function refusedHls(promise, file) {
  if (/\.m3u8$/.test(file)) return refusedFormat(promise, 'hls');
  const error = await rejectsWithCode(promise, 'E_VIDEO_DECODE');
  assert.match(error.message, /\(hls\) is not among the allowed formats|Invalid data found/, error.message);
  return error;
}

async function decoderStillWorks() {
  assert.deepEqual(frameColours(await decodeVideo(segments, { frames: 4 })), ['red', 'green', 'blue', 'white']);
  assert.deepEqual(ffmpegChildren(), [], 'no ffmpeg or ffprobe left running');
}

test('HLS playlists naming file://, relative and http:// segments are refused; nothing is fetched', async () => {
  const playlists = [
    write('0', hlsPlaylist(`file://${other}`)), // an upload keeps no name: detected from the content
    write('absolute.m3u8', hlsPlaylist(other)),
    write('deep/down/relative.m3u8', hlsPlaylist(path.relative(path.join(uploads, 'deep/down'), other))),
    write('network', hlsPlaylist(`${counter.url}/segment.ts`)),
    write('network.m3u8', hlsPlaylist(`${counter.url}/segment.ts`)),
  ];
  for (const playlist of playlists) {
    await refusedHls(decodeVideo(playlist), playlist);
    await refusedHls(probeVideo(playlist), playlist);
  }
  assert.equal(counter.connections, 0, 'no connection reached the listener');
  await decoderStillWorks();
});

test('a DASH manifest and ffconcat lists (absolute and relative names) are refused', async () => {
  const dash = write('manifest', dashManifest(counter.url));
  const mpd = write('manifest.mpd', dashManifest(counter.url));
  for (const file of [dash, mpd]) {
    await refusedFormat(decodeVideo(file), 'dash');
    await refusedFormat(probeVideo(file), 'dash');
  }
  const lists = [
    write('list', ffconcatList(other)),
    write('nested/list.ffconcat', ffconcatList(path.relative(path.join(uploads, 'nested'), other))),
    write('safe-name', ffconcatList('other.mp4')),
  ];
  fs.copyFileSync(other, path.join(uploads, 'other.mp4'));
  for (const list of lists) {
    await refusedFormat(decodeVideo(list), 'concat');
    await refusedFormat(probeVideo(list), 'concat');
  }
  assert.equal(counter.connections, 0, 'no connection reached the listener');
  await decoderStillWorks();
});

test('72,000 frames in 0.9 MB: refused at maxClipFrames with default settings, ffmpeg stopped early', async () => {
  assert.ok(fs.statSync(long).size < 1.5e6, 'the file is small');
  const info = await probeVideo(long);
  assert.equal(info.frames, 72_000);
  const rssBefore = peakRssMB();
  const started = Date.now();
  // size 112, as a model would ask: every frame kept would be 2.7 GB.
  const error = await rejectsWithCode(decodeVideo(long, { size: 112 }), 'E_VIDEO_DECODE');
  const elapsed = Date.now() - started;
  assert.match(error.message, /more than 3000 frames \(maxClipFrames\)/);
  // 3000 frames of 112x112 are 113 MB; all 72,000 would be 2.7 GB.
  const grew = peakRssMB() - rssBefore;
  assert.ok(grew < 600, `peak RSS grew by ${grew.toFixed(0)} MB`);
  assert.ok(elapsed < 20_000, `refused after ${elapsed} ms`);
  // A lower cap stops sooner, with its own number in the message.
  const lower = await rejectsWithCode(decodeVideo(long, { size: 32, maxClipFrames: 100 }), 'E_VIDEO_DECODE');
  assert.match(lower.message, /more than 100 frames/);
  await decoderStillWorks();
});

test('the same file with maxFrames: one pass, evenly spread frames, bounded memory', async () => {
  const rssBefore = peakRssMB();
  const clip = await decodeVideo(long, { size: 32, maxFrames: 8 });
  assert.equal(clip.frames, 8);
  // Frame i of 8 comes from second i x 600/7, which lies in brightness step i.
  const levels = Array.from({ length: 8 }, (_, frame) => pixel(clip, frame, 16, 16)[0]);
  for (let index = 1; index < 8; index += 1) {
    assert.ok(levels[index] - levels[index - 1] > 20, `steps rise one at a time: ${levels.join(', ')}`);
  }
  const grew = peakRssMB() - rssBefore;
  assert.ok(grew < 200, `peak RSS grew by ${grew.toFixed(0)} MB`);
});

test('a header that understates frames and duration ten-fold: right frames in one pass, and maxVideoSeconds holds', async () => {
  const lying = understateMp4(segments, path.join(uploads, 'lying.mp4'), 10);
  const info = await probeVideo(lying);
  assert.equal(info.frames, 24, 'the header claims 24 frames');
  assert.ok(info.duration < 1, `the header claims ${info.duration} s`);
  // uniformIndices over the 240 real frames: 0, 80, 159, 239; a plan for 24 would end at frame 23 (red).
  assert.deepEqual(frameColours(await decodeVideo(lying, { maxFrames: 4 })), ['red', 'green', 'blue', 'white']);
  assert.deepEqual(frameColours(await decodeVideo(lying, { frames: 4 })), ['red', 'green', 'blue', 'white']);
  const seven = frameColours(await decodeVideo(lying, { frames: 7, size: 16 }));
  assert.deepEqual(seven, ['red', 'red', 'green', 'blue', 'blue', 'white', 'white']);
  const all = await decodeVideo(lying, { size: 16 });
  assert.equal(all.frames, 240, 'without sampling, every frame that is there');
  // The header says 0.8 s; the decoded timestamps run to 8 s.
  const error = await rejectsWithCode(decodeVideo(lying, { maxVideoSeconds: 2 }), 'E_VIDEO_DECODE');
  assert.match(error.message, /decoded video runs past/);
  assert.equal((await decodeVideo(lying, { maxVideoSeconds: 9, frames: 2 })).frames, 2, 'within the limit it decodes');
  // maxClipFrames counts decoded frames, not the 24 claimed.
  await rejectsWithCode(decodeVideo(lying, { size: 16, maxClipFrames: 100 }), 'E_VIDEO_DECODE');
  await decoderStillWorks();
});

test('a stream whose header states no duration: measured from its frames, and refused where nothing measures it', async () => {
  // Raw H.264 has no container duration: the probe derives one from the packets it counts.
  const raw = path.join(uploads, 'raw.h264');
  runFfmpeg(['-i', segments, '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', raw]);
  const stated = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'default=nw=1:nk=1', raw],
    { encoding: 'utf8' }).trim();
  assert.equal(stated, 'N/A', 'ffprobe finds no duration');
  const info = await probeVideo(raw);
  assert.equal(info.frames, 240);
  // frames / fps: a raw stream's rate is the decoder's guess (30 fps from the SPS timing on ffmpeg 5.1,
  // ffmpeg 7.1's default of 25), so 8 or 9.6 s.
  assert.ok(Math.abs(info.duration - info.frames / info.fps) < 0.05 && info.duration >= 7.5 && info.duration <= 10,
    `derived ${info.duration} s at ${info.fps} fps`);
  await rejectsWithCode(decodeVideo(raw, { maxVideoSeconds: 5 }), 'E_VIDEO_DECODE');
  assert.equal((await decodeVideo(raw, { size: 16, maxVideoSeconds: 11 })).frames, 240);
  // With neither a duration nor a count and rate to derive one, a limit cannot be checked before decoding.
  const settings = { maxClipFrames: 3000, maxPixels: 1e6, formats: ['mov'] };
  assert.throws(() => checkBeforeDecoding('x', { duration: 0 }, {}, { ...settings, maxVideoSeconds: 60 }),
    (error) => error.code === 'E_VIDEO_DECODE' && /states no duration/.test(error.message));
  checkBeforeDecoding('x', { duration: 0 }, {}, { ...settings, maxVideoSeconds: null });
  checkBeforeDecoding('x', { duration: 59 }, {}, { ...settings, maxVideoSeconds: 60 });
});

test('pictures larger than maxPixels: refused from the header, and inside ffmpeg when they appear mid-stream', async () => {
  const huge = path.join(uploads, 'huge.mp4');
  runFfmpeg(['-f', 'lavfi', '-i', 'color=c=gray:s=7700x4400:r=1:d=1', '-frames:v', '1', '-c:v', 'libx264', '-preset', 'ultrafast', huge]);
  const started = Date.now();
  const error = await rejectsWithCode(decodeVideo(huge, { size: 32 }), 'E_VIDEO_DECODE');
  assert.match(error.message, /7700x4400.*maxPixels/);
  await rejectsWithCode(probeVideo(huge), 'E_VIDEO_DECODE');
  assert.ok(Date.now() - started < 15_000);
  // Raw H.264 that starts at 32x32 and switches to 640x640: the probe sees 32x32, the decoder the rest.
  const small = path.join(folder, 'small.h264');
  const large = path.join(folder, 'large.h264');
  runFfmpeg(['-f', 'lavfi', '-i', 'color=c=red:s=32x32:r=10:d=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'h264', small]);
  runFfmpeg(['-f', 'lavfi', '-i', 'color=c=blue:s=640x640:r=10:d=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'h264', large]);
  const mixed = write('mixed.h264', Buffer.concat([fs.readFileSync(small), fs.readFileSync(large)]));
  assert.equal((await probeVideo(mixed)).width, 32);
  const inside = await rejectsWithCode(decodeVideo(mixed, { maxPixels: 100_000, size: 32 }), 'E_VIDEO_DECODE');
  assert.match(inside.message, /640x640.*maxPixels/);
  await decoderStillWorks();
});

test('zero bytes, random bytes, a truncated file and a FIFO end in E_VIDEO_DECODE without hanging', async () => {
  const empty = write('empty.mp4', Buffer.alloc(0));
  // 64 KiB of bytes that look random, the same on every run.
  const blocks = [crypto.createHash('sha512').update('seed').digest()];
  while (blocks.length < 1024) blocks.push(crypto.createHash('sha512').update(blocks.at(-1)).digest());
  const random = write('random', Buffer.concat(blocks));
  const whole = fs.readFileSync(segments);
  const truncated = write('truncated.mp4', whole.subarray(0, Math.floor(whole.length / 2)));
  const fifo = path.join(uploads, 'fifo.mp4');
  execFileSync('mkfifo', [fifo]);
  const started = Date.now();
  for (const file of [empty, random, truncated, fifo]) {
    await rejectsWithCode(decodeVideo(file), 'E_VIDEO_DECODE');
    await rejectsWithCode(decodeVideo(file, { frames: 4 }), 'E_VIDEO_DECODE');
  }
  assert.ok(Date.now() - started < 20_000, `all refused in ${Date.now() - started} ms`);
  await decoderStillWorks();
});
