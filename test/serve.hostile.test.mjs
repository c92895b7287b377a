// Hostile clients against the Fastify plugin, all on one server: uploads trickled byte by byte get
// 408 and leave nothing; 100 uploads at once while the queue is full get 503 before any is stored;
// a client cut off mid-multipart leaves nothing; refused types are answered before their body
// arrives; a 500 names no internal detail; a bad X-Request-Id is replaced. After each, the server
// still answers /healthz and a normal predict. Each case reports its time and the process's peak RSS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Fastify from 'fastify';
import { videoRNNPlugin, videoRNNRequestId } from 'video-rnn/fastify';
import { PredictionService, VideoRNN, VideoRNNError, makeSyntheticDataset } from '../dist/index.js';
import { temporaryFolder, waitFor } from './helpers/media.mjs';
import { assertEmptyFolder, assertError, json, postMultipart, postRaw } from './helpers/serve.mjs';

// Small, so that a trickled upload is cut quickly; local uploads of a few KB take milliseconds.
const requestTimeoutMs = 1500;
const folder = temporaryFolder(after);
let model;
let service;
let videos;
let app;
let url;
let port;
let uploads;
// The model's predict waits on this gate while it is set, which holds the queue full.
let gate;
let nativeFailure;
const logLines = [];

before(async () => {
  model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 21 });
  const dataset = await makeSyntheticDataset(path.join(folder, 'clips'),
    { classes: ['left', 'right'], perClass: 1, size: 32, minFrames: 3, maxFrames: 4, seed: 22 });
  videos = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index).source);
  const predict = model.predict.bind(model);
  model.predict = async (...args) => {
    if (gate) await gate.promise;
    if (nativeFailure) throw new VideoRNNError('E_NATIVE', nativeFailure);
    return predict(...args);
  };
  uploads = path.join(folder, 'uploads');
  fs.mkdirSync(uploads);
  // One batch of one clip at a time, and two clips queued behind it at most.
  service = new PredictionService(model, { maxQueue: 2, maxBatchClips: 1, maxDelayMs: 0, timeoutMs: 120_000 });
  // Errors are logged (as JSON lines) where the test can read them.
  const stream = { write: (line) => { logLines.push(JSON.parse(line)); } };
  app = Fastify({ logger: { level: 'error', stream }, genReqId: videoRNNRequestId, requestIdHeader: false });
  await app.register(videoRNNPlugin, { service, tempDir: uploads, processMetrics: false, requestTimeoutMs });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  port = Number(new URL(url).port);
});

after(async () => {
  await app?.close();
  await service?.close();
  model?.dispose();
});

function peakRssMB() {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** The server answers /healthz and predicts a normal upload; nothing is left in the temp folder. */
async function assertHealthy(what) {
  assert.equal((await fetch(`${url}/healthz`)).status, 200, `/healthz after ${what}`);
  const response = await postRaw(url, videos[0]);
  assert.equal(response.status, 200, `a normal predict after ${what}: ${await response.text()}`);
  assertEmptyFolder(uploads, what);
}

async function refusedUploads() {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^video_rnn_uploads_refused_total (\d+)$/m.exec(text)[1]);
}

/** A raw connection: sends `head`, then resolves with everything the server wrote before it closed. */
function rawConnection(head) {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(head);
  let received = '';
  socket.setEncoding('latin1').on('data', (text) => { received += text; });
  const closed = new Promise((resolve) => {
    socket.once('close', () => resolve(received));
    socket.once('error', () => undefined);
  });
  return { socket, closed, received: () => received };
}

function statusOf(responseText) {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(responseText)?.[1]);
}

function bodyOf(responseText) {
  return JSON.parse(responseText.slice(responseText.indexOf('\r\n\r\n') + 4));
}

test('slowloris: raw and multipart uploads trickled a byte at a time get 408 within the timeout and leave no file', async (t) => {
  const boundary = 'slowloris-boundary';
  const cases = {
    raw: { type: 'video/mp4', body: fs.readFileSync(videos[0]) },
    multipart: {
      type: `multipart/form-data; boundary=${boundary}`,
      body: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n`
        + 'Content-Type: video/mp4\r\n\r\n'), fs.readFileSync(videos[0]), Buffer.from(`\r\n--${boundary}--\r\n`)]),
    },
  };
  t.diagnostic(`peak RSS before any hostile request (model loaded, one server): ${peakRssMB()} MB`);
  const started = performance.now();
  const results = await Promise.all(Object.entries(cases).map(async ([name, { type, body }]) => {
    const connection = rawConnection(`POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n`
      + `Content-Length: ${body.length}\r\n\r\n`);
    let sent = 0;
    // Multipart sends its part headers at once, so that the file is being stored when the clock runs out.
    if (name === 'multipart') {
      sent = body.indexOf('\r\n\r\n') + 4;
      connection.socket.write(body.subarray(0, sent));
    }
    const trickle = setInterval(() => {
      if (sent < body.length && !connection.socket.destroyed) connection.socket.write(body.subarray(sent, sent += 1));
    }, 100);
    if (name === 'raw') {
      // Two uploads in progress fill this server's bound (maxUploads defaults to maxQueue, 2 here).
      await waitFor(() => fs.readdirSync(uploads).length === 2, 'both trickled uploads to be admitted');
      await assertError(await postRaw(url, videos[1]), 503, 'E_OVERLOADED');
      assert.equal(fs.readdirSync(uploads).length, 2, 'the refused upload was not stored');
    }
    // Bounded, so that a server that never cuts the trickle fails here instead of hanging.
    const text = await Promise.race([connection.closed, new Promise((resolve) => setTimeout(resolve, requestTimeoutMs + 8000, 'still open'))]);
    clearInterval(trickle);
    connection.socket.destroy();
    return { name, text, seconds: (performance.now() - started) / 1000, sent };
  }));
  for (const { name, text, seconds, sent } of results) {
    assert.equal(statusOf(text), 408, `${name}: ${text}`);
    assert.equal(bodyOf(text).error.code, 'E_REQUEST_TIMEOUT');
    assert.ok(seconds < requestTimeoutMs / 1000 + 3, `${name}: cut after ${seconds} s`);
    assert.ok(sent < cases[name].body.length, `${name}: the body was still arriving`);
    t.diagnostic(`${name} slowloris: 408 after ${seconds.toFixed(2)} s (${sent} of ${cases[name].body.length} bytes sent)`);
  }
  assertEmptyFolder(uploads, 'the trickled uploads');
  await assertHealthy('slowloris');
  t.diagnostic(`peak RSS ${peakRssMB()} MB`);
});

test('100 uploads at once while the queue is full: every one gets 503 with Retry-After, and none is stored', async (t) => {
  let release;
  gate = { promise: new Promise((resolve) => { release = resolve; }) };
  const running = postRaw(url, videos[0]);
  await waitFor(() => service.stats.running === 1, 'the first clip to be running');
  const queued = [postRaw(url, videos[1]), postRaw(url, videos[0])];
  await waitFor(() => service.stats.queued === 2 && service.stats.decoding === 0, 'two more clips to be queued');
  assert.equal(fs.readdirSync(uploads).length, 3);
  const refusedBefore = await refusedUploads();
  const events = [];
  const watcher = fs.watch(uploads, (event, name) => events.push(`${event} ${name}`));
  const started = performance.now();
  const responses = await Promise.all(Array.from({ length: 100 }, () => postRaw(url, videos[1])));
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 100));
  watcher.close();
  for (const response of responses) {
    assert.ok(Number(response.headers.get('retry-after')) >= 1, `Retry-After: ${response.headers.get('retry-after')}`);
    await assertError(response, 503, 'E_OVERLOADED');
  }
  assert.deepEqual(events, [], 'nothing was created in the temp folder while they were refused');
  assert.equal(await refusedUploads() - refusedBefore, 100, 'video_rnn_uploads_refused_total counts them');
  assert.equal(fs.readdirSync(uploads).length, 3, 'only the running and the queued requests hold an upload');
  release();
  gate = undefined;
  assert.equal((await running).status, 200);
  for (const response of await Promise.all(queued)) assert.equal(response.status, 200);
  t.diagnostic(`100 refused uploads: 100 x 503 in ${seconds.toFixed(2)} s`);
  await assertHealthy('100 refused uploads');
  t.diagnostic(`peak RSS ${peakRssMB()} MB`);
});

test('a client that disconnects in the middle of a multipart upload leaves no file, and the server carries on', async (t) => {
  const boundary = 'cut-off-boundary';
  const connection = rawConnection(`POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n`
    + `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 200000\r\n\r\n`
    + `--${boundary}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
  connection.socket.write(Buffer.alloc(40_000, 7));
  await waitFor(() => fs.readdirSync(uploads).length === 1, 'the upload folder to appear');
  const started = performance.now();
  connection.socket.destroy();
  await waitFor(() => fs.readdirSync(uploads).length === 0, 'the upload folder to be removed');
  t.diagnostic(`cut-off multipart: folder removed ${(performance.now() - started).toFixed(0)} ms after the disconnect`);
  await assertHealthy('a cut-off multipart upload');
  t.diagnostic(`peak RSS ${peakRssMB()} MB`);
});

test('415 for JSON and text bodies before any of the body is read', async (t) => {
  for (const type of ['application/json', 'text/plain']) {
    // 10 MB announced, 10 bytes sent: only an answer that does not wait for the body can arrive.
    const started = performance.now();
    const connection = rawConnection(`POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n`
      + `Content-Length: ${10 * 2 ** 20}\r\n\r\n{"path": "`);
    const text = await Promise.race([connection.closed, new Promise((resolve) => setTimeout(resolve, 5000, 'no answer'))]);
    connection.socket.destroy();
    assert.equal(statusOf(text), 415, `${type}: ${text}`);
    assert.equal(bodyOf(text).error.code, 'E_UNSUPPORTED_MEDIA_TYPE');
    t.diagnostic(`${type}: 415 after ${(performance.now() - started).toFixed(0)} ms with 10 of ${10 * 2 ** 20} bytes sent`);
  }
  await assertHealthy('415');
  t.diagnostic(`peak RSS ${peakRssMB()} MB`);
});

test('a 500 says the code, a generic message and the request id; the detail stays out of the body', async (t) => {
  const detail = 'shape mismatch in /usr/lib/x86_64-linux-gnu/libtorch_cpu.so at aten/src/ATen/native/Linear.cpp:42';
  nativeFailure = detail;
  let response;
  try {
    response = await postRaw(url, videos[0], { headers: { 'x-request-id': 'trace-0042.a:b_c' } });
  } finally {
    nativeFailure = undefined;
  }
  const native = await assertError(response, 500, 'E_NATIVE');
  assert.equal(native.error.requestId, 'trace-0042.a:b_c');
  assert.doesNotMatch(JSON.stringify(native), /libtorch|Linear\.cpp|shape/);
  const logged = logLines.find((line) => line.reqId === 'trace-0042.a:b_c' && line.level === 50);
  assert.equal(logged?.err?.message, detail, 'the log has the detail, under the request id');
  // A decoder that is not there: the message of E_NO_FFMPEG names the path that was tried.
  const missing = path.join(folder, 'no-such-dir', 'ffmpeg');
  const saved = process.env.FFMPEG_PATH;
  process.env.FFMPEG_PATH = missing;
  try {
    response = await postRaw(url, videos[0]);
  } finally {
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved;
  }
  const noFfmpeg = await assertError(response, 500, 'E_NO_FFMPEG');
  assert.doesNotMatch(JSON.stringify(noFfmpeg), /no-such-dir|FFMPEG_PATH/);
  assert.match(noFfmpeg.error.requestId, /^[0-9a-f-]{36}$/);
  t.diagnostic(`500 bodies: ${JSON.stringify(native)} ${JSON.stringify(noFfmpeg)}`);
  await assertHealthy('500s');
  t.diagnostic(`peak RSS ${peakRssMB()} MB`);
});

test('an X-Request-Id that is too long or has other characters is replaced by a UUID', async () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  for (const [given, kept] of [['a'.repeat(128), true], ['a'.repeat(129), false], ['id with spaces', false],
    ['<script>', false], ['"quoted"', false], ['ok-ID_1.2:3', true]]) {
    const response = await fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-request-id': given }, body: 'x' });
    const body = await assertError(response, 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    if (kept) assert.equal(body.error.requestId, given);
    else assert.match(body.error.requestId, uuid, `${given} replaced`);
  }
});
