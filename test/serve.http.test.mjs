// The Fastify plugin over real HTTP on loopback: predictions equal model.predict, concurrent requests
// share batches, and every error status comes as { error: { code, message } } with no upload left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Fastify from 'fastify';
import multipart from '@fastify/multipart';
import { videoRNNPlugin } from 'video-rnn/fastify';
import { PredictionService, VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { renderGraph, temporaryFolder, waitFor } from './helpers/media.mjs';
import { assertEmptyFolder, assertError, json, postMultipart, postRaw, startServer } from './helpers/serve.mjs';

// As in serve.service.test.mjs: batched and lone results measured identical; different clips differ by > 1e-4.
const tolerance = 1e-6;

let model;
let videos;
let expected;
let uploads;
const folder = temporaryFolder(after);
before(async () => {
  model = await VideoRNN.create({ classes: ['a', 'b', 'c'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 5 });
  const dataset = await makeSyntheticDataset(path.join(folder, 'clips'),
    { classes: ['left', 'right'], perClass: 2, size: 32, minFrames: 3, maxFrames: 6, seed: 6 });
  videos = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index).source);
  expected = await model.predict(videos);
  uploads = path.join(folder, 'uploads');
  fs.mkdirSync(uploads);
});
after(() => model.dispose());

function assertPrediction(actual, wanted, what) {
  for (const label of model.classes) {
    const difference = Math.abs(actual.probabilities[label] - wanted.probabilities[label]);
    assert.ok(difference < tolerance, `${what}: ${label} differs from model.predict by ${difference}`);
  }
  assert.equal(actual.label, wanted.label, what);
}

async function withServer(options, run) {
  const server = await startServer({ model, tempDir: uploads, processMetrics: false, ...options });
  try {
    await run(server);
  } finally {
    await server.app.close();
  }
  assertEmptyFolder(uploads, 'the server closed');
}

test('a raw body and a multipart upload of several files get the predictions of model.predict, in order', async () => {
  await withServer({}, async ({ url }) => {
    for (const type of ['video/mp4', 'application/octet-stream']) {
      const response = await postRaw(url, videos[1], { type, query: '?top=2' });
      const body = await json(response);
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.equal(body.predictions.length, 1);
      assertPrediction(body.predictions[0], expected[1], type);
      assert.deepEqual(body.predictions[0].topK.map((entry) => entry.label), expected[1].topK.slice(0, 2).map((entry) => entry.label));
      assertEmptyFolder(uploads, `a ${type} prediction`);
    }
    const order = [3, 0, 2];
    const response = await postMultipart(url, order.map((index) => videos[index]));
    const body = await json(response);
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.predictions.length, 3);
    order.forEach((index, position) => assertPrediction(body.predictions[position], expected[index], `part ${position}`));
    assertEmptyFolder(uploads, 'a multipart prediction');
  });
});

test('mounted with a prefix in an app that already registered @fastify/multipart, with its own limits', async () => {
  const app = Fastify({ logger: false });
  await app.register(multipart, { limits: { fileSize: 1024 ** 3 } });
  await app.register(videoRNNPlugin, { prefix: '/video', model, tempDir: uploads, processMetrics: false, maxBodyMB: 0.1, maxFiles: 2 });
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/video`;
  try {
    const body = await json(await postMultipart(url, [videos[2], videos[1]]));
    [2, 1].forEach((index, position) => assertPrediction(body.predictions[position], expected[index], `part ${position}`));
    await assertError(await postMultipart(url, [videos[0], videos[1], videos[2]]), 413, 'E_PAYLOAD_TOO_LARGE');
    assertEmptyFolder(uploads, '413 for too many files');
  } finally {
    await app.close();
  }
});

test('32 concurrent requests equal the sequential results, in fewer batches than requests', async () => {
  // Generous timeout: on a busy machine 32 decodes alone can take many seconds.
  const service = new PredictionService(model, { maxBatchClips: 8, maxDelayMs: 100, timeoutMs: 600_000 });
  await withServer({ service }, async ({ url }) => {
    const sequential = [];
    for (let index = 0; index < 4; index += 1) sequential.push((await json(await postRaw(url, videos[index]))).predictions[0]);
    const before = service.stats.batches;
    assert.equal(before, 4);
    const responses = await Promise.all(Array.from({ length: 32 }, (_, index) => postRaw(url, videos[index % 4])));
    const bodies = await Promise.all(responses.map(json));
    bodies.forEach((body, index) => {
      assert.equal(responses[index].status, 200, JSON.stringify(body));
      assertPrediction(body.predictions[0], sequential[index % 4], `request ${index}`);
      assertPrediction(body.predictions[0], expected[index % 4], `request ${index} against model.predict`);
    });
    const batches = service.stats.batches - before;
    assert.ok(batches < 32, `32 concurrent requests ran in ${batches} batches`);
    assert.equal(service.stats.clips, 36);
  });
  await service.close();
});

test('400: a bad ?top, an empty body, a multipart body without a file', async () => {
  await withServer({}, async ({ url }) => {
    await assertError(await postRaw(url, videos[0], { query: '?top=abc' }), 400, 'E_INVALID_ARGUMENT');
    await assertError(await postRaw(url, videos[0], { query: '?top=0' }), 400, 'E_INVALID_ARGUMENT');
    assertEmptyFolder(uploads, '400 for ?top');
    await assertError(await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: new Uint8Array(0) }),
      400, 'E_INVALID_ARGUMENT');
    assertEmptyFolder(uploads, '400 for an empty body');
    const form = new FormData();
    form.append('note', 'no file here');
    await assertError(await fetch(`${url}/v1/predict`, { method: 'POST', body: form }), 400, 'E_INVALID_ARGUMENT');
    assertEmptyFolder(uploads, '400 for a multipart body without a file');
  });
});

test('401: a wrong or missing API key; health checks need none', async () => {
  const apiKey = 'k3y-with-some-length';
  await withServer({ apiKey }, async ({ url }) => {
    const missing = await assertError(await postRaw(url, videos[0]), 401, 'E_UNAUTHORIZED');
    assert.ok(missing);
    await assertError(await postRaw(url, videos[0], { headers: { authorization: 'Bearer k3y-with-some-lengtH' } }), 401, 'E_UNAUTHORIZED');
    await assertError(await postRaw(url, videos[0], { headers: { 'x-api-key': 'k3y' } }), 401, 'E_UNAUTHORIZED');
    await assertError(await fetch(`${url}/metrics`), 401, 'E_UNAUTHORIZED');
    await assertError(await fetch(`${url}/v1/model`), 401, 'E_UNAUTHORIZED');
    assertEmptyFolder(uploads, '401');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    for (const headers of [{ authorization: `Bearer ${apiKey}` }, { 'x-api-key': apiKey }]) {
      const response = await postRaw(url, videos[2], { headers });
      assert.equal(response.status, 200);
      assertPrediction((await json(response)).predictions[0], expected[2], 'with the key');
    }
  });
});

test('413: a body over maxBodyMB, declared or streamed, and a multipart file over it', async () => {
  const big = path.join(folder, 'big.bin');
  fs.writeFileSync(big, Buffer.alloc(300 * 1024, 7));
  await withServer({ maxBodyMB: 0.1 }, async ({ url }) => {
    await assertError(await postRaw(url, big), 413, 'E_PAYLOAD_TOO_LARGE');
    assertEmptyFolder(uploads, '413 for a declared length');
    // No Content-Length: the size shows only while the body streams to disk.
    const chunks = [Buffer.alloc(64 * 1024, 1), Buffer.alloc(64 * 1024, 2), Buffer.alloc(64 * 1024, 3)];
    const stream = new ReadableStream({ pull(controller) { if (chunks.length) controller.enqueue(chunks.shift()); else controller.close(); } });
    await assertError(await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: stream, duplex: 'half' }),
      413, 'E_PAYLOAD_TOO_LARGE');
    assertEmptyFolder(uploads, '413 for a streamed body');
    await assertError(await postMultipart(url, [videos[0], big]), 413, 'E_PAYLOAD_TOO_LARGE');
    assertEmptyFolder(uploads, '413 for a multipart file');
    const response = await postRaw(url, videos[3]);
    assert.equal(response.status, 200, 'a video under the limit still passes');
  });
});

test('415: a type that is not a video, and JSON when paths are not allowed', async () => {
  await withServer({}, async ({ url }) => {
    for (const type of ['text/plain', 'image/png', 'application/json']) {
      const body = type === 'application/json' ? JSON.stringify({ path: videos[0] }) : fs.readFileSync(videos[0]);
      await assertError(await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': type }, body }), 415,
        'E_UNSUPPORTED_MEDIA_TYPE');
      assertEmptyFolder(uploads, `415 for ${type}`);
    }
  });
});

test('422: bytes that are not a video, and a video longer than maxVideoSeconds', async () => {
  const garbage = path.join(folder, 'garbage.mp4');
  fs.writeFileSync(garbage, Buffer.from('this is not a video file, only some text that ffmpeg cannot decode'));
  // 3 s at 10 fps, by construction.
  const long = renderGraph(path.join(folder, 'long.mp4'), 'testsrc=size=32x32:rate=10:duration=3');
  await withServer({ serviceOptions: { maxVideoSeconds: 2 } }, async ({ url }) => {
    const undecodable = await assertError(await postRaw(url, garbage), 422, 'E_VIDEO_DECODE');
    assert.doesNotMatch(undecodable.error.message, /video-rnn-upload/, 'the message names the upload, not its private file');
    assertEmptyFolder(uploads, '422 for an undecodable body');
    await assertError(await postMultipart(url, [videos[0], long]), 422, 'E_VIDEO_DECODE');
    assertEmptyFolder(uploads, '422 for an over-long video');
  });
});

test('503 with Retry-After beyond the queue; a request aborted by its client frees its slot; /readyz follows', async () => {
  const service = new PredictionService(model, { maxQueue: 2, maxBatchClips: 8, maxDelayMs: 60_000 });
  await withServer({ service }, async ({ url }) => {
    const client = new AbortController();
    const first = postRaw(url, videos[0], { signal: client.signal }).catch((error) => error);
    const second = postRaw(url, videos[1]);
    await waitFor(() => service.stats.queued === 2 && service.stats.decoding === 0, 'two requests queued');
    const full = await fetch(`${url}/readyz`);
    assert.equal(full.status, 503);
    const refused = await postRaw(url, videos[2]);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, `Retry-After: ${refused.headers.get('retry-after')}`);
    await assertError(refused, 503, 'E_OVERLOADED');
    assert.equal(fs.readdirSync(uploads).length, 2, 'only the two queued requests have files; the refused one left none');
    client.abort();
    assert.equal((await first).name, 'AbortError');
    await waitFor(() => service.stats.queued === 1, 'the aborted request to leave the queue');
    assert.equal(service.stats.rejections.E_ABORTED, 1);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    // The freed slot takes one more request, and only one.
    const third = postRaw(url, videos[3]);
    await waitFor(() => service.stats.queued === 2 && service.stats.decoding === 0, 'the third request queued and decoded');
    await assertError(await postRaw(url, videos[2]), 503, 'E_OVERLOADED');
    await service.close();
    for (const [response, index] of [[await second, 1], [await third, 3]]) {
      assert.equal(response.status, 200);
      assertPrediction((await json(response)).predictions[0], expected[index], `video ${index}`);
    }
    assert.equal(service.stats.batches, 1);
  });
});

test('a client that disconnects halfway through its upload leaves no file, and the server carries on', async () => {
  await withServer({}, async ({ url }) => {
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n');
    socket.write(Buffer.alloc(30_000, 5));
    await waitFor(() => fs.readdirSync(uploads).length === 1, 'the upload folder to appear');
    socket.destroy();
    await waitFor(() => fs.readdirSync(uploads).length === 0, 'the upload folder to be removed');
    const response = await postRaw(url, videos[1]);
    assert.equal(response.status, 200);
  });
});

test('504 when no answer comes within timeoutMs', async () => {
  await withServer({ serviceOptions: { timeoutMs: 1 } }, async ({ url }) => {
    await assertError(await postRaw(url, videos[0]), 504, 'E_TIMEOUT');
    assertEmptyFolder(uploads, '504');
  });
});

test('GET /v1/model, /healthz and /readyz', async () => {
  await withServer({}, async ({ url }) => {
    const info = await json(await fetch(`${url}/v1/model`));
    assert.deepEqual(info.classes, ['a', 'b', 'c']);
    assert.equal(info.config.frameSize, 32);
    assert.equal(info.config.hiddenSize, 8);
    assert.equal(info.device, 'cpu');
    assert.equal(info.precision, 'fp32');
    assert.deepEqual(await json(await fetch(`${url}/healthz`)), { status: 'ok' });
    assert.equal((await json(await fetch(`${url}/readyz`))).status, 'ready');
  });
});
