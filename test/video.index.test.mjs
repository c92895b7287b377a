// MP4/MOV stream facts from the file's own index (src/video/mp4-index.ts): the same facts as
// ffprobe's, the same frames as the ffprobe path, one process start per decode, and ffprobe again
// wherever the index cannot answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeVideo, locateFfmpeg, probeVideo, setFfmpegPath } from '../dist/video/index.js';
import { readMp4Index } from '../dist/video/mp4-index.js';
import { renderColourSegments, renderGraph, runFfmpeg, temporaryFolder } from './helpers/media.mjs';
import { decodeAll } from './helpers/decode-all.mjs';

const folder = temporaryFolder(after);
const x264 = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'];
const files = {};

before(() => {
  files.segments = renderColourSegments(path.join(folder, 'segments.mp4'),
    { names: ['red', 'green', 'blue', 'white'], seconds: 1, fps: 10, width: 64, height: 48 });
  files.ntsc = renderGraph(path.join(folder, 'ntsc.mp4'), 'testsrc2=s=96x64:r=30000/1001:d=3', x264);
  // 7 x 1001 / 30000 s = 0.2335666... s, which ffprobe reports with six decimals.
  files.ntscShort = renderGraph(path.join(folder, 'ntsc-short.mp4'), 'testsrc2=s=48x32:r=30000/1001', ['-frames:v', '7', ...x264]);
  runFfmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=48x32:r=12:d=1.5', '-f', 'lavfi', '-i', 'sine=d=2', ...x264, '-c:a', 'aac',
    path.join(folder, 'audio.mp4')]);
  files.audio = path.join(folder, 'audio.mov');
  runFfmpeg(['-i', path.join(folder, 'audio.mp4'), '-c', 'copy', files.audio]);
  const stored = renderGraph(path.join(folder, 'stored.mp4'), 'testsrc2=s=64x32:r=5:d=1.4', x264);
  files.rotated = path.join(folder, 'rotated.mp4');
  // ffmpeg 6 and later write the display matrix from -display_rotation; 5.1 from the rotate tag.
  try {
    runFfmpeg(['-display_rotation', '90', '-i', stored, '-c', 'copy', files.rotated]);
  } catch {
    runFfmpeg(['-i', stored, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', files.rotated]);
  }
});

test('the index gives exactly the facts ffprobe gives, for MP4 and MOV, rotated, with audio, at 30000/1001 fps, with a duration of more than six decimals', async () => {
  for (const [name, file] of Object.entries(files)) {
    const indexed = await readMp4Index(file);
    assert.notEqual(indexed, null, `${name}: the index answers`);
    const { duration, fps, width, height, frames } = indexed;
    assert.deepEqual({ duration, fps, width, height, frames }, await probeVideo(file), name);
  }
  assert.deepEqual((({ width, height }) => [width, height])(await readMp4Index(files.rotated)), [32, 64]);
});

const settings = [
  {}, { size: 32 }, { fps: 5 }, { maxFrames: 4 }, { frames: 7 }, { fps: 3, maxFrames: 2, size: 24 }, { frames: 1, size: 16 },
  { maxVideoSeconds: 1 },
];

test('frames are byte-identical to the ffprobe path for every setting: fps, maxFrames, frames, size, rotation, limits', async () => {
  const [indexed, probed] = await Promise.all(['containerIndex=1', 'containerIndex=0'].map((tuning) => decodeAll(tuning, Object.values(files), settings)));
  assert.equal(indexed.length, Object.keys(files).length * settings.length);
  assert.deepEqual(indexed, probed);
  assert.ok(indexed.some((entry) => entry[0] === 'E_VIDEO_DECODE' && /lasts 3\.0 s/.test(entry[1])),
    'the header duration check of maxVideoSeconds still refuses a 3 s video');
});

test('an MP4 decode starts no ffprobe; probeVideo, MPEG-TS and a fragmented MP4 still do', async (t) => {
  const counter = path.join(folder, 'ffprobe-starts');
  const wrapper = path.join(folder, 'ffprobe');
  fs.writeFileSync(wrapper, `#!/bin/sh\necho start >> '${counter}'\nexec '${locateFfmpeg().ffprobe}' "$@"\n`, { mode: 0o755 });
  const starts = () => (fs.existsSync(counter) ? fs.readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);
  setFfmpegPath({ ffprobe: wrapper });
  t.after(() => setFfmpegPath({ ffprobe: null }));

  const mp4 = path.join(folder, 'plain.mp4');
  fs.copyFileSync(files.segments, mp4); // a new file: no remembered probe
  assert.equal((await decodeVideo(mp4, { maxFrames: 4, size: 16 })).frames, 4);
  assert.equal(starts(), 0, 'no ffprobe for an MP4 with a plain index');

  await probeVideo(mp4);
  assert.equal(starts(), 1, 'probeVideo still asks ffprobe');

  const fragmented = path.join(folder, 'fragmented.mp4');
  runFfmpeg(['-i', files.segments, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', fragmented]);
  assert.equal(await readMp4Index(fragmented), null, 'a fragmented file has no frame count in its index');
  assert.equal((await decodeVideo(fragmented, { frames: 3, size: 16 })).frames, 3);
  const afterFragmented = starts();
  assert.ok(afterFragmented > 1, 'a fragmented MP4 is probed');

  const transport = path.join(folder, 'clip.ts');
  runFfmpeg(['-i', files.ntsc, '-c', 'copy', transport]);
  assert.equal(await readMp4Index(transport), null);
  assert.equal((await decodeVideo(transport, { frames: 3, size: 16 })).frames, 3);
  assert.ok(starts() > afterFragmented, 'MPEG-TS, which has no index read here, is probed');
});

test('a truncated MP4 whose index comes first goes to ffprobe, and is found out as before', async () => {
  const whole = path.join(folder, 'faststart.mp4');
  runFfmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=64x64:r=25:d=4', ...x264, '-movflags', '+faststart', whole]);
  const bytes = fs.readFileSync(whole);
  const cut = path.join(folder, 'cut.mp4');
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  assert.equal((await readMp4Index(whole)).frames, 100);
  assert.equal(await readMp4Index(cut), null, 'the media box runs past the end of the file');
  await assert.rejects(decodeVideo(cut, { size: 16 }),
    (error) => error.code === 'E_VIDEO_DECODE' && /truncated or damaged/.test(error.message));
});

test('the index answers nothing for files it cannot vouch for', async () => {
  const write = (name, bytes) => {
    const file = path.join(folder, name);
    fs.writeFileSync(file, bytes);
    return file;
  };
  const box = (type, payload) => {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(8 + payload.length, 0);
    header.write(type, 4, 'latin1');
    return Buffer.concat([header, payload]);
  };
  const ftyp = box('ftyp', Buffer.from('isom\0\0\0\0isom', 'latin1'));
  const cases = {
    empty: Buffer.alloc(0),
    random: crypto.randomBytes(4096),
    'no ftyp first': Buffer.concat([box('moov', Buffer.alloc(0)), ftyp]),
    'moov larger than the file': Buffer.concat([ftyp, Buffer.from([0x7f, 0xff, 0xff, 0xff]), Buffer.from('moov'), Buffer.alloc(64)]),
    'empty moov': Buffer.concat([ftyp, box('moov', Buffer.alloc(0))]),
    'two moov': Buffer.concat([ftyp, box('moov', Buffer.alloc(0)), box('moov', Buffer.alloc(0))]),
    'a box inside moov that overruns it': Buffer.concat([ftyp, box('moov', Buffer.concat([Buffer.from([0, 0, 1, 0]), Buffer.from('trak')]))]),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    assert.equal(await readMp4Index(write(name.replace(/ /g, '-'), bytes)), null, name);
  }
  // A real file whose movie matrix is not the identity: ffprobe decides.
  const plain = fs.readFileSync(files.segments);
  const mvhd = plain.indexOf(Buffer.from('mvhd'));
  const edited = Buffer.from(plain);
  edited.writeInt32BE(0x20000, mvhd + 4 + 36); // the matrix's first entry in a version-0 mvhd
  assert.equal(await readMp4Index(write('scaled.mp4', edited)), null, 'a movie matrix');
  // Negative composition offsets (ctts version 1): ffmpeg versions differ in the duration they report.
  const negative = path.join(folder, 'negative-cts.mp4');
  runFfmpeg(['-i', files.ntsc, '-c', 'copy', '-movflags', 'negative_cts_offsets', negative]);
  assert.equal(await readMp4Index(negative), null, 'negative composition offsets');
  assert.notEqual(await readMp4Index(files.ntsc), null, 'B-frames with offsets of at least 0 are read');
});
