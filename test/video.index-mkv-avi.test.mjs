// Matroska, WebM and AVI stream facts read in this process (src/video/mkv-index.ts,
// src/video/avi-index.ts): the same facts as ffprobe's, the same frames as the ffprobe path, one
// process start per decode, ffprobe again wherever the reader cannot vouch for the file, and
// bounded work whatever a hostile header claims.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeVideo, locateFfmpeg, probeVideo, setFfmpegPath } from '../dist/video/index.js';
import { readAviIndex } from '../dist/video/avi-index.js';
import { readMatroskaIndex } from '../dist/video/mkv-index.js';
import { readMp4Index } from '../dist/video/mp4-index.js';
import { renderColourSegments, renderGraph, runFfmpeg, temporaryFolder } from './helpers/media.mjs';
import { decodeAll as decodeClips } from './helpers/decode-all.mjs';

const folder = temporaryFolder(after);
const x264 = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p'];
const files = {};
const encoders = execFileSync(locateFfmpeg().ffmpeg, ['-hide_banner', '-encoders'], { encoding: 'utf8' });
const has = (name) => new RegExp(`^ V\\S* +${name} `, 'm').test(encoders);
const at = (name) => path.join(folder, name);

/** The reader for a file's container, by name, as decodeVideo picks it by content. */
const readIndex = (file) => (file.endsWith('.avi') ? readAviIndex(file) : readMatroskaIndex(file));
const facts = ({ duration, fps, width, height, frames }) => ({ duration, fps, width, height, frames });

before(() => {
  files.ntscMkv = renderGraph(at('ntsc.mkv'), 'testsrc2=s=96x64:r=30000/1001:d=2', x264);
  files.segmentsMkv = renderColourSegments(at('segments.mkv'),
    { names: ['red', 'green', 'blue', 'white'], seconds: 1, fps: 10, width: 64, height: 48 });
  runFfmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=48x32:r=12:d=1.5', '-f', 'lavfi', '-i', 'sine=d=2', ...x264,
    '-c:a', 'pcm_s16le', at('audio.mkv')]);
  files.audioMkv = at('audio.mkv');
  // A variable frame rate: ten frames 0.1 s apart, a 0.3 s gap, ten more.
  runFfmpeg(['-f', 'lavfi', '-i', "testsrc2=s=90x50:r=10:d=2,setpts='N*0.1/TB+if(gt(N,9),0.3/TB,0)'",
    '-vsync', 'passthrough', ...x264, at('variable.mkv')]);
  files.variableMkv = at('variable.mkv');
  if (has('libvpx')) files.vp8 = renderGraph(at('vp8.webm'), 'testsrc2=s=64x48:r=10:d=2', ['-c:v', 'libvpx', '-b:v', '200k']);
  if (has('libvpx-vp9')) {
    files.vp9 = renderGraph(at('vp9.webm'), 'testsrc2=s=48x48:r=30000/1001:d=1', ['-c:v', 'libvpx-vp9', '-b:v', '200k']);
  }
  files.mjpegAvi = renderGraph(at('mjpeg.avi'), 'testsrc2=s=90x50:r=30000/1001:d=2', ['-c:v', 'mjpeg', '-pix_fmt', 'yuvj420p']);
  runFfmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=64x48:r=12:d=2', '-f', 'lavfi', '-i', 'sine=d=2', '-c:v', 'mpeg4',
    '-c:a', 'pcm_s16le', at('audio.avi')]);
  files.audioAvi = at('audio.avi');
  files.segmentsAvi = renderColourSegments(at('segments.avi'),
    { names: ['blue', 'red', 'white'], seconds: 0.5, fps: 16, width: 40, height: 32 });
});

test('the readers give exactly the facts ffprobe gives: MKV, WebM and AVI, with audio, at 30000/1001 and a variable rate', async (t) => {
  if (!has('libvpx') || !has('libvpx-vp9')) t.diagnostic('this ffmpeg lacks libvpx or libvpx-vp9: WebM covered by the encoders it has');
  assert.ok(files.vp8 !== undefined || files.vp9 !== undefined, 'WebM is covered by at least one encoder');
  for (const [name, file] of Object.entries(files)) {
    const indexed = await readIndex(file);
    if (indexed === null && name === 'variableMkv' && !fs.readFileSync(file).includes(Buffer.from([0x23, 0xe3, 0x83]))) {
      // Without DefaultDuration the rate is ffprobe's estimate, which the reader does not make.
      t.diagnostic('this ffmpeg writes no DefaultDuration for a variable rate: that clip goes to ffprobe');
      continue;
    }
    assert.notEqual(indexed, null, `${name}: the reader answers`);
    assert.deepEqual(facts(indexed), await probeVideo(file), name);
    assert.equal(indexed.map, '0:V:0');
  }
  // Each reader answers for its own container only.
  assert.equal(await readAviIndex(files.ntscMkv), null);
  assert.equal(await readMatroskaIndex(files.audioAvi), null);
  assert.equal(await readMp4Index(files.ntscMkv), null);
});

const settings = [
  {}, { fps: 5 }, { maxFrames: 4 }, { frames: 7 }, { fps: 3, maxFrames: 2, size: 24 }, { frames: 1, size: 16 },
  { maxVideoSeconds: 1 },
];

async function decodeAll(tuning, list, options = settings, environment = {}) {
  return decodeClips(tuning, list, options, environment);
}

/** An AVI whose three frame counts all claim 2^31 - 1 frames: a header that lies, consistently. */
function claimingAvi() {
  const bytes = Buffer.from(fs.readFileSync(files.segmentsAvi));
  const huge = 0x7fffffff;
  bytes.writeUInt32LE(huge, bytes.indexOf('avih') + 8 + 16);
  bytes.writeUInt32LE(huge, bytes.indexOf('strh') + 8 + 32);
  const dmlh = bytes.indexOf('dmlh');
  if (dmlh >= 0) bytes.writeUInt32LE(huge, dmlh + 8);
  fs.writeFileSync(at('claims.avi'), bytes);
  return at('claims.avi');
}

test('frames are byte-identical to the ffprobe path for every setting: fps, maxFrames, frames, size, limits', async () => {
  const list = [...Object.values(files), claimingAvi()];
  assert.equal((await readAviIndex(list.at(-1))).frames, 0x7fffffff, 'the reader passes the claim on, as ffprobe does');
  // Cut downloads go to ffprobe, and come out as they did before.
  const cut = [files.audioAvi, files.ntscMkv].map((file) => {
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(at(`cut-${path.basename(file)}`), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    return at(`cut-${path.basename(file)}`);
  });
  const cutSettings = [{}, { maxFrames: 4 }];
  const [indexed, probed, cutIndexed, cutProbed] = await Promise.all([decodeAll('containerIndex=1', list),
    decodeAll('containerIndex=0', list), decodeAll('containerIndex=1', cut, cutSettings), decodeAll('containerIndex=0', cut, cutSettings)]);
  assert.equal(indexed.length, list.length * settings.length);
  assert.deepEqual(indexed, probed);
  assert.equal(cutIndexed.length, 4);
  assert.deepEqual(cutIndexed, cutProbed);
  assert.ok(indexed.some((entry) => entry[0] === 'E_VIDEO_DECODE' && /lasts 2\.0 s/.test(entry[1])),
    'the header duration check of maxVideoSeconds still refuses a 2 s video');
  // The lying header costs neither memory nor a wrong clip: 24 frames, sampled as asked.
  const claims = indexed.slice(-settings.length);
  assert.deepEqual(claims[2].slice(0, 3), [4, 40, 32]);
  assert.deepEqual(claims[0].slice(0, 3), [24, 40, 32]);
});

test('a Matroska, WebM or AVI decode starts no ffprobe, whatever the file is named; unusual files still do', async (t) => {
  const counter = at('ffprobe-starts');
  const wrapper = at('ffprobe');
  fs.writeFileSync(wrapper, `#!/bin/sh\necho start >> '${counter}'\nexec '${locateFfmpeg().ffprobe}' "$@"\n`, { mode: 0o755 });
  const starts = () => (fs.existsSync(counter) ? fs.readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);
  setFfmpegPath({ ffprobe: wrapper });
  t.after(() => setFfmpegPath({ ffprobe: null }));

  // New names (no remembered probe), and names that lie about the container: the first bytes decide.
  const copies = [[files.segmentsMkv, 'a.mkv'], [files.vp8 ?? files.vp9, 'b.webm'], [files.audioAvi, 'c.avi'],
    [files.ntscMkv, 'matroska.avi'], [files.mjpegAvi, 'avi.mp4']];
  for (const [source, name] of copies) {
    fs.copyFileSync(source, at(name));
    assert.equal((await decodeVideo(at(name), { maxFrames: 3, size: 16 })).frames, 3, name);
  }
  assert.equal(starts(), 0, 'no ffprobe for Matroska, WebM or AVI with a plain header');
  // maxPixels is checked against the header's size before ffmpeg starts.
  for (const name of ['a.mkv', 'c.avi']) {
    await assert.rejects(decodeVideo(at(name), { maxFrames: 2, maxPixels: 2000 }),
      (error) => error.code === 'E_VIDEO_DECODE' && /frames of 64x48 have more than 2000 pixels \(maxPixels/.test(error.message));
  }
  assert.equal(starts(), 0, 'refused from the header');

  const twoMkv = at('two-video.mkv');
  runFfmpeg(['-i', files.ntscMkv, '-map', '0:v', '-map', '0:v', '-c', 'copy', twoMkv]);
  const twoAvi = at('two-video.avi');
  runFfmpeg(['-i', files.audioAvi, '-map', '0:v', '-map', '0:v', '-c', 'copy', twoAvi]);
  for (const file of [twoMkv, twoAvi]) {
    assert.equal(await readIndex(file), null, `${file}: two video streams`);
    const before = starts();
    assert.equal((await decodeVideo(file, { frames: 3, size: 16 })).frames, 3);
    assert.ok(starts() > before, `${file} is probed`);
  }

  const stereo = at('stereo.mkv');
  runFfmpeg(['-i', files.ntscMkv, '-c', 'copy', '-metadata:s:v:0', 'stereo_mode=left_right', stereo]);
  if (fs.readFileSync(stereo).includes(Buffer.from([0x53, 0xb8]))) assert.equal(await readMatroskaIndex(stereo), null, 'a stereo mode');
  else t.diagnostic('this ffmpeg wrote no StereoMode from the tag; the written-by-hand case below covers it');

  // The same switch as for MP4 forces ffprobe for all; a container off the allow-list is not read.
  const before = starts();
  fs.copyFileSync(files.audioAvi, at('switched.avi'));
  fs.copyFileSync(files.segmentsMkv, at('switched.mkv'));
  const switched = await decodeAll('containerIndex=0', [at('switched.avi'), at('switched.mkv')], [{ maxFrames: 2, size: 16 }],
    { FFPROBE_PATH: wrapper });
  assert.deepEqual(switched.map((entry) => entry[0]), [2, 2]);
  assert.ok(starts() >= before + 3, 'containerIndex=0 probes (twice for Matroska: its report, then its packet count)');
  await assert.rejects(decodeVideo(at('a.mkv'), { frames: 2, formats: ['mov', 'avi'] }),
    (error) => error.code === 'E_VIDEO_DECODE' && /not among the allowed formats/.test(error.message));
  await assert.rejects(decodeVideo(at('c.avi'), { frames: 2, formats: ['matroska'] }),
    (error) => error.code === 'E_VIDEO_DECODE' && /not among the allowed formats/.test(error.message));
});

test('the AVI reader answers nothing for cut, extended or inconsistent files', async () => {
  const plain = fs.readFileSync(files.audioAvi);
  const write = (name, bytes) => {
    fs.writeFileSync(at(name), bytes);
    return at(name);
  };
  const edit = (name, change) => {
    const bytes = Buffer.from(plain);
    change(bytes);
    return write(name, bytes);
  };
  const strh = plain.indexOf('strh');
  const strf = plain.indexOf('strf');
  assert.notEqual(await readAviIndex(write('plain.avi', plain)), null);
  // A picture stored top-down (negative height) has the same size.
  assert.equal((await readAviIndex(edit('top-down.avi', (b) => b.writeInt32LE(-48, strf + 8 + 8)))).height, 48);
  const riffAvix = Buffer.concat([Buffer.from('RIFF'), Buffer.from([4, 0, 0, 0]), Buffer.from('AVIX')]);
  const cases = {
    'cut': plain.subarray(0, Math.floor(plain.length * 0.7)),
    'an AVIX extension after it': Buffer.concat([plain, riffAvix]),
    'frame counts that disagree': edit('counts.avi', (b) => b.writeUInt32LE(23, strh + 8 + 32)),
    'sizes that disagree': edit('sizes.avi', (b) => b.writeInt32LE(65, strf + 8 + 4)),
    'a stream start': edit('start.avi', (b) => b.writeUInt32LE(5, strh + 8 + 28)),
    'a DivX subtitle stored as video': edit('dxsb.avi', (b) => b.write('DXSB', strf + 8 + 16, 'latin1')),
    'a frame rate outside the standard ones (1000/33)': edit('rate.avi', (b) => {
      b.writeUInt32LE(33, strh + 8 + 20);
      b.writeUInt32LE(1000, strh + 8 + 24);
    }),
    'a count past an int': edit('count.avi', (b) => {
      for (const [tag, offset] of [['avih', 16], ['strh', 32], ['dmlh', 0]]) {
        if (b.indexOf(tag) >= 0) b.writeUInt32LE(0xffffffff, b.indexOf(tag) + 8 + offset);
      }
    }),
    'a header list larger than the file': edit('hdrl.avi', (b) => b.writeUInt32LE(0x7ffffff0, 16)),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const file = typeof bytes === 'string' ? bytes : write(`${name.replace(/\W+/g, '-')}.avi`, bytes);
    assert.equal(await readAviIndex(file), null, name);
  }
  // A consistent header claiming 65536 x 65536 pictures is refused by maxPixels before any decoding.
  const huge = edit('huge.avi', (b) => {
    for (const offset of [plain.indexOf('avih') + 8 + 32, plain.indexOf('avih') + 8 + 36, strf + 8 + 4, strf + 8 + 8]) {
      b.writeUInt32LE(65536, offset);
    }
  });
  assert.equal((await readAviIndex(huge)).width, 65536);
  await assert.rejects(decodeVideo(huge, { maxFrames: 2 }),
    (error) => error.code === 'E_VIDEO_DECODE' && /frames of 65536x65536 have more than 33177600 pixels/.test(error.message));
});

// A small EBML writer for files ffmpeg does not write: every element with an 8-byte size.
const idBytes = (id) => Buffer.from(id.toString(16).padStart(id > 0xffffff ? 8 : id > 0xffff ? 6 : id > 0xff ? 4 : 2, '0'), 'hex');
const sized = (id, size, payload = Buffer.alloc(0)) => {
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(size) | (1n << 56n));
  return Buffer.concat([idBytes(id), length, payload]);
};
const el = (id, ...parts) => {
  const payload = Buffer.concat(parts);
  return sized(id, payload.length, payload);
};
const uint = (id, value) => el(id, Buffer.from(value.toString(16).padStart(2 * Math.ceil(value.toString(16).length / 2), '0'), 'hex'));
const str = (id, value) => el(id, Buffer.from(value, 'latin1'));
const f64 = (id, value) => {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(value);
  return el(id, bytes);
};
const block = (track, flags = 0x80, extra = []) => el(0xa3, Buffer.from([0x80 | track, 0, 0, flags, ...extra, 1, 2, 3]));

function matroska({ docType = 'webm', info = [f64(0x4489, 1000)], codec = 'V_VP8', frameNanoseconds = 100_000_000, trackFields = [],
  video = [], tracks = [], clusters, tail = [] } = {}) {
  const videoTrack = el(0xae, uint(0xd7, 1), uint(0x83, 1), str(0x86, codec),
    ...(frameNanoseconds === null ? [] : [uint(0x23e383, frameNanoseconds)]), ...trackFields,
    el(0xe0, uint(0xb0, 32), uint(0xba, 16), ...video));
  const audioTrack = el(0xae, uint(0xd7, 2), uint(0x83, 2), str(0x86, 'A_PCM/INT/LIT'));
  const defaultClusters = [el(0x1f43b675, uint(0xe7, 0), block(1), block(1), block(2), block(1, 0x82, [2]),
    el(0xa0, el(0xa1, Buffer.from([0x81, 0, 0, 0, 9])), uint(0xfb, 0))), el(0x1f43b675, uint(0xe7, 400), block(1))];
  return Buffer.concat([
    el(0x1a45dfa3, uint(0x4286, 1), str(0x4282, docType), uint(0x4285, 2)),
    el(0x18538067, el(0x1549a966, uint(0x2ad7b1, 1_000_000), ...info), el(0x1654ae6b, videoTrack, audioTrack, ...tracks),
      ...(clusters ?? defaultClusters), ...tail),
  ]);
}

test('the Matroska reader counts blocks and laced frames, and answers nothing for what it cannot vouch for', async () => {
  const write = (name, bytes) => {
    fs.writeFileSync(at(name), bytes);
    return at(name);
  };
  // 2 simple blocks, 3 frames laced in one block, 1 in a block group, 1 in the second cluster; track 2's block not counted.
  assert.deepEqual(await readMatroskaIndex(write('plain.webm', matroska())),
    { duration: 1, fps: 10, width: 32, height: 16, frames: 7, map: '0:V:0' });
  // The rate as ffmpeg reduces 1e9 / DefaultDuration (to terms of at most 30000).
  assert.equal((await readMatroskaIndex(write('ntsc.webm', matroska({ frameNanoseconds: 33_366_667 })))).fps, 30000 / 1001);
  assert.equal((await readMatroskaIndex(write('odd.webm', matroska({ frameNanoseconds: 33_333_333 })))).fps, 30);

  const plainCluster = el(0x1f43b675, uint(0xe7, 0), block(1));
  const unknownCluster = Buffer.concat([idBytes(0x1f43b675), Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), uint(0xe7, 0), block(1)]);
  const cases = {
    'another DocType': matroska({ docType: 'matroskb' }),
    'no Duration': matroska({ info: [] }),
    'ContentEncodings (compression or encryption)': matroska({ trackFields: [el(0x6d80, el(0x6240, uint(0x5031, 0)))] }),
    'a stereo mode': matroska({ video: [uint(0x53b8, 1)] }),
    'a projection': matroska({ video: [el(0x7670, uint(0x7671, 1))] }),
    'cropping': matroska({ video: [uint(0x54aa, 2)] }),
    'a display size other than the picture': matroska({ video: [uint(0x54b0, 64), uint(0x54ba, 16)] }),
    'a disabled video track': matroska({ trackFields: [uint(0xb9, 0)] }),
    'two video tracks': matroska({ tracks: [el(0xae, uint(0xd7, 3), uint(0x83, 1), str(0x86, 'V_VP8'), uint(0x23e383, 1e8),
      el(0xe0, uint(0xb0, 32), uint(0xba, 16)))] }),
    'a codec not in the list': matroska({ codec: 'V_QUICKTIME' }),
    'no DefaultDuration': matroska({ frameNanoseconds: null }),
    'a tag named rotate': matroska({ tail: [el(0x1254c367, el(0x7373, el(0x67c8, str(0x45a3, 'rotate'), str(0x4487, '90'))))] }),
    'a Cluster of unknown size': matroska({ clusters: [plainCluster, unknownCluster] }),
    'a Cluster past the end of the file': matroska({ clusters: [plainCluster, sized(0x1f43b675, 1 << 30)] }),
    'a block claiming 2^50 bytes': matroska({ clusters: [el(0x1f43b675, sized(0xa3, 2 ** 50, Buffer.from([0x81, 0, 0, 0])))] }),
    'an element size of 2^56 - 2': matroska({ clusters: [sized(0x1f43b675, 2 ** 56 - 2)] }),
    'bytes after the Segment': Buffer.concat([matroska(), Buffer.from([0xec, 0x80])]),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    assert.equal(await readMatroskaIndex(write(`${name.replace(/\W+/g, '-')}.webm`, bytes)), null, name);
  }
  const cut = fs.readFileSync(files.ntscMkv);
  assert.equal(await readMatroskaIndex(write('cut.mkv', cut.subarray(0, Math.floor(cut.length * 0.6)))), null, 'a cut file');
});

test('a hostile Matroska file costs bounded reads: over a million elements, or a lace count, claim nothing', async () => {
  // 2^20 + 1 two-byte Void elements in one cluster: past the element bound.
  const voids = Buffer.alloc(2 * ((1 << 20) + 1));
  for (let index = 0; index < voids.length; index += 2) voids.set([0xec, 0x80], index);
  const many = at('many.webm');
  fs.writeFileSync(many, matroska({ clusters: [el(0x1f43b675, block(1), voids)] }));
  const started = process.hrtime.bigint();
  const memoryBefore = process.memoryUsage().arrayBuffers;
  assert.equal(await readMatroskaIndex(many), null);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  assert.ok(seconds < 10, `gave up after ${seconds.toFixed(2)} s`);
  assert.ok(process.memoryUsage().arrayBuffers - memoryBefore < 16 * 2 ** 20, 'no memory beyond a read window');
  // The same number of elements less one is read, and a lace count of 256 frames in one block is counted.
  const fewer = at('fewer.webm');
  fs.writeFileSync(fewer, matroska({ clusters: [el(0x1f43b675, block(1, 0x82, [255]), voids.subarray(0, voids.length - 64))] }));
  assert.equal((await readMatroskaIndex(fewer)).frames, 256);
  assert.equal(await readMatroskaIndex(fewer, AbortSignal.abort()), null, 'an aborted signal stops the walk');
});
