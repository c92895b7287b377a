// Videos decoded at the same time share ffmpeg processes (src/video/group.ts): each clip is the same
// bytes as decoded alone, each hostile video gets the error it gets alone, an abort stops only its
// own decode, and there are fewer process starts than videos.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { decodeConcurrency, decodeVideo, locateFfmpeg, setFfmpegPath } from '../dist/video/index.js';
import { understateMp4 } from './helpers/hostile.mjs';
import { decodeAll } from './helpers/decode-all.mjs';
import {
  descendantProcesses, frameColours, mpeg4, rejectsWithCode, renderColourSegments, renderGraph, runFfmpeg, temporaryFolder,
  waitFor,
} from './helpers/media.mjs';

const folder = temporaryFolder(after);
const at = (name) => path.join(folder, name);
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
const files = {};
let wrapper; // an ffmpeg that writes its command line to a log, then runs the real one
let log;

before(() => {
  files.segments = renderColourSegments(at('segments.mp4'),
    { names: ['red', 'green', 'blue', 'white'], seconds: 1, fps: 10, width: 64, height: 48 });
  files.wide = renderGraph(at('wide.mp4'), 'testsrc2=s=160x90:r=25:d=1', x264);
  files.matroska = renderGraph(at('clip.mkv'), 'testsrc2=s=96x64:r=30000/1001:d=1', x264);
  files.avi = renderGraph(at('clip.avi'), 'testsrc2=s=64x64:r=12:d=1', mpeg4);
  const stored = renderGraph(at('stored.mp4'), 'testsrc2=s=64x32:r=5:d=1.4', x264);
  files.rotated = at('rotated.mp4');
  // ffmpeg 6 and later write the display matrix from -display_rotation; 5.1 from the rotate tag.
  try {
    runFfmpeg(['-display_rotation', '90', '-i', stored, '-c', 'copy', files.rotated]);
  } catch {
    runFfmpeg(['-i', stored, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', files.rotated]);
  }
  // The index claims 24 frames and 0.8 s; the file holds 240 frames, 8 s.
  const long = renderColourSegments(at('long.mp4'), { names: ['red', 'green', 'blue', 'white'], seconds: 2, fps: 30,
    width: 32, height: 32, outputArgs: [...x264, '-bf', '0', '-use_editlist', '0'] });
  files.lying = understateMp4(long, at('lying.mp4'), 10);
  // Damaged pictures behind an intact index: the decoder reports errors, frames may be lost.
  const busy = renderGraph(at('busy.mp4'), 'testsrc2=s=160x120:r=25:d=2', [...x264, '-movflags', '+faststart']);
  const bytes = fs.readFileSync(busy);
  for (let offset = Math.floor(bytes.length * 0.4); offset < bytes.length * 0.6; offset += 97) bytes[offset] ^= 0x5a;
  files.damaged = at('damaged.mp4');
  fs.writeFileSync(files.damaged, bytes);
  // No container index here (ffprobe answers for it): decoded alone.
  files.random = at('random.mp4');
  fs.writeFileSync(files.random, Buffer.alloc(4096, 7));

  log = at('ffmpeg-runs.log');
  wrapper = at('bin/ffmpeg');
  fs.mkdirSync(path.dirname(wrapper));
  // exec keeps the shell's pid, so the logged pid is ffmpeg's.
  fs.writeFileSync(wrapper, `#!/bin/sh\nprintf '%s %s\\n' "$$" "$*" >> '${log}'\nexec '${locateFfmpeg().ffmpeg}' "$@"\n`, { mode: 0o755 });
});

/**
 * Each decoding run of ffmpeg the wrapper logged since the last call (fluent-ffmpeg's own queries,
 * without an input, left out): its pid, how many inputs it had, and the command line.
 */
function runsSinceLast() {
  const lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  fs.rmSync(log, { force: true });
  return lines.map((line) => ({ pid: Number(line.split(' ')[0]), inputs: line.split(' -i ').length - 1, line }))
    .filter((run) => run.inputs > 0);
}

const settings = [
  { size: 32, frames: 4 }, { size: 24, fps: 5, maxFrames: 6 }, { size: 16 }, { maxFrames: 3 },
  { size: 16, maxVideoSeconds: 2 }, { size: 16, maxClipFrames: 100 },
];

test('videos decoded at once share processes; every clip and every error is what decoding alone gives', async () => {
  const list = Object.values(files);
  const environment = { FFMPEG_PATH: wrapper, FFPROBE_PATH: locateFfmpeg().ffprobe };
  const alone = await decodeAll('decodeGroup=1', list, settings, environment);
  const aloneRuns = runsSinceLast();
  const shared = await decodeAll('', list, settings, environment, { concurrent: true });
  const sharedRuns = runsSinceLast();
  // The same, with ffmpeg started from this process rather than from the helper process.
  const sharedHere = await decodeAll('launcher=0', list, settings, environment, { concurrent: true });
  assert.ok(runsSinceLast().some((run) => run.inputs > 1));

  assert.equal(shared.length, list.length * settings.length);
  // ffmpeg's messages name its decoder by address ("[h264 @ 0x55b4a2814c80]"), which differs per run.
  const withoutAddresses = (entry) => entry.map((value) => (typeof value === 'string' ? value.replace(/ @ 0x[0-9a-f]+/g, '') : value));
  shared.forEach((entry, index) => {
    const name = `${Object.keys(files)[Math.floor(index / settings.length)]} ${JSON.stringify(settings[index % settings.length])}`;
    assert.deepEqual(withoutAddresses(entry), withoutAddresses(alone[index]), name);
    assert.deepEqual(withoutAddresses(sharedHere[index]), withoutAddresses(alone[index]), `${name}, launcher=0`);
  });
  assert.ok(aloneRuns.every((run) => run.inputs === 1), 'decodeGroup=1: one video per process');
  const largest = Math.max(...sharedRuns.map((run) => run.inputs));
  assert.ok(largest >= 4, `a shared process decoded ${largest} videos`);
  // A shared run that meets a hostile video decodes all of its videos again alone, so two hostile
  // files of eight cost more than the bare count of groups.
  assert.ok(sharedRuns.length < aloneRuns.length * 0.75, `${sharedRuns.length} processes against ${aloneRuns.length} alone`);
  // The lying and the damaged file were in shared runs that gave up, then decoded alone.
  for (const name of ['lying', 'damaged']) {
    const runs = sharedRuns.filter((run) => run.line.includes(files[name]));
    assert.ok(runs.some((run) => run.inputs > 1) && runs.some((run) => run.inputs === 1), `${name}: shared, then alone`);
  }
  // What alone gives for the hostile ones, so that the comparison above covers errors.
  const entry = (name, setting) => shared[Object.keys(files).indexOf(name) * settings.length + setting];
  assert.equal(entry('lying', 4)[0], 'E_VIDEO_DECODE', 'maxVideoSeconds holds on decoded time');
  assert.match(entry('lying', 4)[1], /decoded video runs past/);
  assert.equal(entry('lying', 0)[0], 4, 'the right frames in one pass');
  assert.equal(entry('random', 0)[0], 'E_VIDEO_DECODE');
});

test('the frames of a shared process are the right ones, whatever the others in it', async () => {
  const clips = await Promise.all([files.segments, files.wide, files.lying, files.matroska]
    .map((file) => decodeVideo(file, { frames: 4, size: 16 })));
  assert.deepEqual(frameColours(clips[0]), ['red', 'green', 'blue', 'white']);
  assert.deepEqual(frameColours(clips[2]), ['red', 'green', 'blue', 'white']);
  assert.deepEqual(clips.map((clip) => [clip.frames, clip.width, clip.height]), Array(4).fill([4, 16, 16]));
});

test('an abort in a shared process rejects that decode alone; the others decode again, and no ffmpeg is left', async () => {
  const previous = decodeConcurrency();
  setFfmpegPath({ ffmpeg: wrapper, ffprobe: locateFfmpeg().ffprobe });
  runsSinceLast();
  // A 1 fps source resampled to 1000 fps keeps ffmpeg busy for seconds.
  const slow = renderGraph(at('slow.mp4'), 'color=c=gray:s=32x32:r=1:d=60', x264);
  decodeConcurrency(1);
  try {
    const blocker = new AbortController();
    const first = decodeVideo(slow, { fps: 1000, size: 64, maxFrames: 4, signal: blocker.signal });
    await waitFor(() => fs.existsSync(log), 'the first decode to start');
    assert.equal(runsSinceLast().length, 1);
    // Three wait behind it, and share the next process.
    const stop = new AbortController();
    const others = [files.segments, files.wide].map((file) => decodeVideo(file, { frames: 4, size: 16 }));
    const stopped = decodeVideo(slow, { fps: 1000, size: 64, maxFrames: 4, signal: stop.signal });
    blocker.abort();
    await rejectsWithCode(first, 'E_ABORTED');
    await waitFor(() => fs.existsSync(log), 'the shared process to start');
    const [shared] = runsSinceLast();
    assert.equal(shared.inputs, 3, 'the three waiting videos share one process');
    stop.abort(new Error('caller left'));
    const error = await rejectsWithCode(stopped, 'E_ABORTED');
    assert.equal(error.cause?.message, 'caller left');
    assert.ok(!descendantProcesses().some((child) => child.pid === shared.pid),
      'the shared process is gone when the aborted decode settles');
    const clips = await Promise.all(others);
    assert.deepEqual(frameColours(clips[0]), ['red', 'green', 'blue', 'white']);
    assert.equal(clips[1].frames, 4);
    assert.deepEqual(runsSinceLast().map((run) => run.inputs), [2], 'the other two shared a process again');
    assert.deepEqual(descendantProcesses().filter((child) => child.command === 'ffmpeg'), []);
  } finally {
    decodeConcurrency(previous);
    setFfmpegPath({ ffmpeg: null, ffprobe: null });
  }
});
