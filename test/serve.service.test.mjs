// PredictionService: calls from many callers share native batches, each caller gets its own
// result (equal to model.predict alone), and the limits reject with stable codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PredictionService, VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { makeClip } from './helpers/clips.mjs';
import { descendantProcesses, rejectsWithCode, renderGraph, temporaryFolder } from './helpers/media.mjs';

// A clip's probabilities in a batch against alone: measured identical here (difference 0); 1e-6
// allows for kernels that differ with the batch shape. Different clips differ by more than 1e-4
// (checked in the first test), a hundred times the tolerance.
const tolerance = 1e-6;
const separation = 1e-4;

const folder = temporaryFolder(after);
let model;
let videos;
let dataset;
before(async () => {
  model = await VideoRNN.create({ classes: ['a', 'b', 'c'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 3 });
  dataset = await makeSyntheticDataset(path.join(folder, 'clips'),
    { classes: ['left', 'right'], perClass: 2, size: 32, minFrames: 3, maxFrames: 6, seed: 4 });
  videos = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index).source);
});
after(() => model.dispose());

function largestDifference(a, b) {
  return Math.max(...Object.keys(a.probabilities).map((label) => Math.abs(a.probabilities[label] - b.probabilities[label])));
}

function assertSame(actual, expected, what) {
  const difference = largestDifference(actual, expected);
  assert.ok(difference < tolerance, `${what}: differs from model.predict alone by ${difference}`);
  assert.equal(actual.label, expected.label, what);
}

async function alone(input) {
  return (await model.predict(input))[0];
}

function batchSizes(service) {
  const sizes = [];
  service.on('batch', (event) => sizes.push(event.clips));
  return sizes;
}

test('12 concurrent calls run in 3 batches of 4 and each caller gets its own result', async () => {
  const clips = Array.from({ length: 12 }, (_, index) => makeClip(2 + (index % 5), 32, 100 + index));
  const expected = [];
  for (const clip of clips) expected.push(await alone(clip));
  // The comparison below can tell clips apart only if they differ by far more than the tolerance.
  for (let index = 1; index < clips.length; index += 1) {
    assert.ok(largestDifference(expected[index], expected[0]) > separation, `clip ${index} is too close to clip 0`);
  }
  const service = new PredictionService(model, { maxBatchClips: 4, maxDelayMs: 50 });
  const sizes = batchSizes(service);
  const results = await Promise.all(clips.map((clip) => service.predict(clip, { topK: 2 })));
  results.forEach(([prediction], index) => {
    assertSame(prediction, expected[index], `call ${index}`);
    assert.deepEqual(prediction.topK.map((entry) => entry.label), expected[index].topK.slice(0, 2).map((entry) => entry.label));
  });
  assert.deepEqual(sizes, [4, 4, 4]);
  const stats = service.stats;
  assert.equal(stats.batches, 3);
  assert.equal(stats.clips, 12);
  assert.equal(stats.frames, clips.reduce((sum, clip) => sum + clip.frames, 0));
  assert.equal(stats.meanBatchSize, 4);
  assert.equal(stats.completed, 12);
  assert.equal(stats.queued, 0);
  await service.close();
});

test('a batch closes after maxDelayMs: calls 30 ms apart share one batch only when the delay covers them', async () => {
  const clips = [makeClip(3, 32, 1), makeClip(4, 32, 2)];
  const expected = [await alone(clips[0]), await alone(clips[1])];
  for (const [maxDelayMs, wanted] of [[2000, [2]], [0, [1, 1]]]) {
    const service = new PredictionService(model, { maxBatchClips: 2, maxDelayMs });
    const sizes = batchSizes(service);
    const first = service.predict(clips[0]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const second = service.predict(clips[1]);
    const [[a], [b]] = await Promise.all([first, second]);
    assertSame(a, expected[0], `maxDelayMs ${maxDelayMs}, first`);
    assertSame(b, expected[1], `maxDelayMs ${maxDelayMs}, second`);
    assert.deepEqual(sizes, wanted, `maxDelayMs ${maxDelayMs}`);
    await service.close();
  }
});

test('one call of several inputs, and clips of different frame sizes, which never share a batch', async () => {
  const inputs = [makeClip(3, 32, 7), makeClip(2, 48, 8), makeClip(4, 32, 9), makeClip(5, 48, 10), videos[0], makeClip(2, 48, 11)];
  const expected = [];
  for (const input of inputs) expected.push(await alone(input));
  const service = new PredictionService(model, { maxBatchClips: 3, maxDelayMs: 60_000 });
  const sizes = [];
  service.on('batch', (event) => sizes.push(`${event.clips} clips, ${event.frames} frames`));
  const results = await service.predict(inputs);
  results.forEach((prediction, index) => assertSame(prediction, expected[index], `input ${index}`));
  // 48 px: three Clips, full at once; 32 px: two Clips and the video (decoded to frameSize 32), full once it is decoded.
  assert.deepEqual(sizes, ['3 clips, 9 frames', `3 clips, ${7 + dataset.clips[0].frames} frames`]);
  await service.close();
});

test('maxQueue: a call beyond it rejects with E_OVERLOADED and the accepted ones still finish', async () => {
  const clips = [makeClip(2, 32, 21), makeClip(3, 32, 22), makeClip(2, 32, 23)];
  const service = new PredictionService(model, { maxQueue: 2, maxBatchClips: 4, maxDelayMs: 60_000 });
  const first = service.predict(clips[0]);
  const second = service.predict(clips[1]);
  assert.equal(service.stats.queued, 2);
  assert.equal(service.accepting, false);
  await rejectsWithCode(service.predict(clips[2]), 'E_OVERLOADED');
  await service.close();
  assertSame((await first)[0], await alone(clips[0]), 'first');
  assertSame((await second)[0], await alone(clips[1]), 'second');
  assert.deepEqual(service.stats.rejections, { E_OVERLOADED: 1 });
});

test('E_TIMEOUT: a call that waits too long leaves, and the batch it would have joined runs without it', async () => {
  const clips = [makeClip(2, 32, 31), makeClip(3, 32, 32), makeClip(4, 32, 33), makeClip(2, 32, 34)];
  const service = new PredictionService(model, { maxBatchClips: 3, maxDelayMs: 60_000 });
  const sizes = batchSizes(service);
  const started = performance.now();
  const first = rejectsWithCode(service.predict(clips[0], { timeoutMs: 300 }), 'E_TIMEOUT');
  const second = service.predict(clips[1]);
  await first;
  assert.ok(performance.now() - started >= 290);
  assert.equal(service.stats.queued, 1);
  // The batch fills (1 + 2 clips) and runs at once, without the call that left.
  const third = service.predict([clips[2], clips[3]]);
  const [[b], [c, d]] = await Promise.all([second, third]);
  assertSame(b, await alone(clips[1]), 'second');
  assertSame(c, await alone(clips[2]), 'third, first input');
  assertSame(d, await alone(clips[3]), 'third, second input');
  assert.deepEqual(sizes, [3]);
  assert.deepEqual(service.stats.rejections, { E_TIMEOUT: 1 });
  // The service's own timeoutMs applies when a call sets none.
  const short = new PredictionService(model, { timeoutMs: 200, maxDelayMs: 60_000 });
  await rejectsWithCode(short.predict(clips[0]), 'E_TIMEOUT');
  assert.equal(short.stats.batches, 0);
  await Promise.all([service.close(), short.close()]);
});

test('E_ABORTED: an aborted call leaves the forming batch, and one aborted while its batch runs leaves it unharmed', async () => {
  const clips = [makeClip(2, 32, 41), makeClip(3, 32, 42), makeClip(4, 32, 43), makeClip(5, 32, 44), makeClip(3, 32, 45)];
  const expected = [];
  for (const clip of clips) expected.push(await alone(clip));
  const service = new PredictionService(model, { maxBatchClips: 4, maxDelayMs: 60_000 });
  const sizes = batchSizes(service);
  const controllers = clips.map(() => new AbortController());
  const calls = clips.slice(0, 3).map((clip, index) => service.predict(clip, { signal: controllers[index].signal }).catch((error) => error));
  controllers[1].abort();
  assert.equal(service.stats.queued, 2);
  // Two more clips fill the batch of four; the first call then aborts while that batch runs.
  calls.push(service.predict([clips[3], clips[4]]));
  assert.equal(service.stats.running, 4);
  controllers[0].abort(new Error('the client went away'));
  const [a, b, [c], [d, e]] = await Promise.all(calls);
  assert.equal(a.code, 'E_ABORTED');
  assert.equal(b.code, 'E_ABORTED');
  assertSame(c, expected[2], 'third');
  assertSame(d, expected[3], 'fourth');
  assertSame(e, expected[4], 'fifth');
  assert.deepEqual(sizes, [4]);
  assert.deepEqual(service.stats.rejections, { E_ABORTED: 2 });
  assert.equal(service.stats.queued, 0);
  const already = new AbortController();
  already.abort();
  await rejectsWithCode(service.predict(clips[0], { signal: already.signal }), 'E_ABORTED');
  await service.close();
});

/** Child processes of this process running ffmpeg or ffprobe. */
function decoderChildren() {
  return descendantProcesses().filter((child) => /^ff(mpeg|probe)$/.test(child.command)).length;
}

test('paths are decoded ahead of the model, at most decodeConcurrency at once (counted in /proc)', async () => {
  const expected = [];
  for (const video of videos) expected.push(await alone(video));
  const peaks = {};
  for (const decodeConcurrency of [1, 2]) {
    const service = new PredictionService(model, { decodeConcurrency, maxBatchClips: 8, maxDelayMs: 5 });
    let peak = 0;
    const poll = setInterval(() => { peak = Math.max(peak, decoderChildren()); }, 2);
    const results = await Promise.all(videos.map((video) => service.predict(video)));
    clearInterval(poll);
    results.forEach(([prediction], index) => assertSame(prediction, expected[index], `video ${index}`));
    assert.equal(service.stats.videosDecoded, videos.length);
    assert.equal(service.stats.frames, dataset.clips.reduce((sum, clip) => sum + clip.frames, 0));
    peaks[decodeConcurrency] = peak;
    await service.close();
  }
  assert.equal(peaks[1], 1);
  // The check above could pass by missing processes; with two slots two run at once.
  assert.equal(peaks[2], 2);
});

test('maxVideoSeconds: a longer video rejects with E_VIDEO_DECODE before it is decoded; a bad file with E_VIDEO_DECODE', async () => {
  // 3 s at 10 fps, by construction (lavfi testsrc).
  const long = renderGraph(path.join(folder, 'long.mp4'), 'testsrc=size=32x32:rate=10:duration=3');
  const broken = path.join(folder, 'broken.mp4');
  fs.writeFileSync(broken, 'not a video at all');
  const service = new PredictionService(model, { maxVideoSeconds: 2 });
  const tooLong = await rejectsWithCode(service.predict(long), 'E_VIDEO_DECODE');
  assert.match(tooLong.message, /3\.0 s/);
  assert.equal(service.stats.videosDecoded, 0);
  await rejectsWithCode(service.predict(broken), 'E_VIDEO_DECODE');
  await rejectsWithCode(service.predict(path.join(folder, 'missing.mp4')), 'E_VIDEO_NOT_FOUND');
  const roomy = new PredictionService(model, { maxVideoSeconds: 4 });
  assertSame((await roomy.predict(long))[0], await alone(long), 'a 3 s video under a 4 s limit');
  await Promise.all([service.close(), roomy.close()]);
});

test('close() finishes the accepted calls, then resolves; later calls reject with E_DISPOSED', async () => {
  const service = new PredictionService(model, { maxBatchClips: 2, maxDelayMs: 60_000 });
  const finished = [];
  const calls = [1, 2, 3].map((seed) => service.predict([makeClip(2, 32, seed), videos[seed]]).then((result) => {
    finished.push(result.length);
    return result;
  }));
  await service.close();
  assert.deepEqual(finished, [2, 2, 2]);
  assert.equal(service.stats.clips, 6);
  assert.equal(service.stats.activeCalls, 0);
  await rejectsWithCode(service.predict(makeClip(2, 32)), 'E_DISPOSED');
  await Promise.all(calls);
});

test('bad arguments reject with E_INVALID_ARGUMENT before anything is queued', async () => {
  assert.throws(() => new PredictionService(model, { maxBatchClips: 0 }), { code: 'E_INVALID_ARGUMENT' });
  assert.throws(() => new PredictionService(model, { maxDelay: 5 }), { code: 'E_INVALID_ARGUMENT' });
  assert.throws(() => new PredictionService({}), { code: 'E_INVALID_ARGUMENT' });
  const service = new PredictionService(model, { maxQueue: 2 });
  for (const input of [[], { data: new Uint8Array(5), frames: 1, height: 32, width: 32 }, '', 42]) {
    await rejectsWithCode(service.predict(input), 'E_INVALID_ARGUMENT');
  }
  await rejectsWithCode(service.predict(makeClip(2, 32), { topK: 0 }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(service.predict([1, 2, 3].map((seed) => makeClip(2, 32, seed))), 'E_INVALID_ARGUMENT');
  assert.equal(service.stats.accepted, 0);
  await service.close();
});
