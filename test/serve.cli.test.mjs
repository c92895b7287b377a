// `video-rnn serve` as a real child process: pino JSON logs with request ids, the API key from the
// environment, and SIGTERM with requests in flight: all of them complete, then it exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN } from '../dist/index.js';
import { startCli, tinyDataset } from './cli.run.mjs';
import { temporaryFolder } from './helpers/media.mjs';
import { assertEmptyFolder, json, postRaw } from './helpers/serve.mjs';

const folder = temporaryFolder(after);
let modelFile;
let videos;
let expected;
before(async () => {
  const dataset = await tinyDataset(path.join(folder, 'clips'));
  videos = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index).source);
  const model = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 14 });
  modelFile = path.join(folder, 'model.safetensors');
  await model.save(modelFile);
  expected = await model.predict(videos);
  model.dispose();
});

/** Starts the server on a free port; resolves once its "ready" log line names the address. */
async function startServe(args, env = {}) {
  const uploads = fs.mkdtempSync(path.join(folder, 'uploads-'));
  const run = startCli(['serve', modelFile, '--port', '0', '--host', '127.0.0.1', '--temp-dir', uploads, ...args],
    { env: { VIDEO_RNN_API_KEY: '', ...env }, timeoutMs: 180_000 });
  const lines = [];
  let buffered = '';
  const address = await new Promise((resolve, reject) => {
    run.child.stdout.on('data', (text) => {
      buffered += text;
      const complete = buffered.split('\n');
      buffered = complete.pop();
      for (const line of complete) {
        const entry = JSON.parse(line);
        lines.push(entry);
        if (entry.msg === 'ready') resolve(entry.address);
      }
    });
    run.finished.then((result) => reject(new Error(`the server exited before it was ready: ${JSON.stringify(result)}`)));
  });
  return { ...run, url: address, lines, uploads };
}

test('SIGTERM with requests in flight: it stops listening, all of them complete, then it exits 0', async () => {
  // A long batch delay keeps the requests in flight when the signal arrives; generous timeouts
  // keep a slow machine from turning the drain into 504s or a cut drain.
  const server = await startServe(['--max-delay-ms', '1500', '--max-batch-clips', '16', '--timeout-ms', '600000', '--drain-seconds', '600']);
  const inFlight = videos.map((video) => postRaw(server.url, video));
  let queued = 0;
  while (queued < videos.length) queued = (await json(await fetch(`${server.url}/readyz`))).queued;
  server.child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 200));
  await assert.rejects(fetch(`${server.url}/healthz`), 'a new connection is refused while draining');
  const responses = await Promise.all(inFlight);
  for (const [index, response] of responses.entries()) {
    const body = await json(response);
    assert.equal(response.status, 200, JSON.stringify(body));
    for (const label of ['left', 'right']) {
      assert.ok(Math.abs(body.predictions[0].probabilities[label] - expected[index].probabilities[label]) < 1e-6);
    }
  }
  const result = await server.finished;
  assert.equal(result.code, 0, result.stderr);
  const messages = server.lines.map((line) => line.msg);
  assert.ok(messages.indexOf('stopped') > messages.indexOf('stopping: no new connections, draining requests in flight'));
  // pino: one JSON object per line, each request's lines share its id, which the response also carries.
  const id = responses[0].headers.get('x-request-id');
  assert.match(id, /^[0-9a-f-]{36}$/);
  const ofRequest = server.lines.filter((line) => line.reqId === id);
  assert.deepEqual(ofRequest.map((line) => line.msg), ['incoming request', 'request completed']);
  assert.equal(ofRequest[1].res.statusCode, 200);
  assertEmptyFolder(server.uploads, 'the drain');
});

test('requests still in flight after --drain-seconds: it exits 1 and says so', async () => {
  const server = await startServe(['--max-delay-ms', '30000', '--drain-seconds', '0.5']);
  const pending = postRaw(server.url, videos[0]).catch((error) => error);
  await new Promise((resolve) => setTimeout(resolve, 300));
  server.child.kill('SIGTERM');
  const result = await server.finished;
  assert.equal(result.code, 1);
  assert.ok(server.lines.some((line) => line.level === 50 && /drain-seconds/.test(line.msg)));
  await pending;
});

test('VIDEO_RNN_API_KEY: requests without the key get 401, and a bad flag is a usage error', async () => {
  const server = await startServe([], { VIDEO_RNN_API_KEY: 'from-the-environment' });
  try {
    assert.equal((await postRaw(server.url, videos[0])).status, 401);
    const response = await postRaw(server.url, videos[0], { headers: { 'x-api-key': 'from-the-environment' } });
    assert.equal(response.status, 200);
  } finally {
    server.child.kill('SIGINT');
  }
  assert.equal((await server.finished).code, 0);
  const usage = startCli(['serve', modelFile, '--max-batch-clips', '0']);
  const result = await usage.finished;
  assert.equal(result.code, 2);
  assert.match(result.stderr, /max-batch-clips/);
});
