// `video-rnn serve` as a real child process: pino JSON logs with request ids, the API key from the
// environment, and SIGTERM with requests in flight: all of them complete, then it exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
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

/**
 * Starts the server on a free port (on `host`, with its uploads in `uploads`); resolves once its
 * "ready" log line names the address.
 */
async function startServe(args, env = {}, { host = '127.0.0.1', uploads = fs.mkdtempSync(path.join(folder, 'uploads-')) } = {}) {
  const run = startCli(['serve', modelFile, '--port', '0', '--host', host, '--temp-dir', uploads, ...args],
    { env: { VIDEO_RNN_API_KEY: '', ...env }, timeoutMs: 180_000 });
  const lines = [];
  let buffered = '';
  const ready = await new Promise((resolve, reject) => {
    run.child.stdout.on('data', (text) => {
      buffered += text;
      const complete = buffered.split('\n');
      buffered = complete.pop();
      for (const line of complete) {
        const entry = JSON.parse(line);
        lines.push(entry);
        if (entry.msg === 'ready') resolve(entry);
      }
    });
    run.finished.then((result) => reject(new Error(`the server exited before it was ready: ${JSON.stringify(result)}`)));
  });
  return { ...run, url: ready.address, ready, lines, uploads };
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
  // The request it gave up on had its upload stored: exiting removed it.
  assert.ok(server.lines.some((line) => line.removed === 1), 'the exit says it removed one upload');
  assertEmptyFolder(server.uploads, 'an exit that cut a request short');
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

test('beyond loopback: refused without a key, served with --insecure-no-auth; stale uploads swept; request ids checked', async (t) => {
  const refused = await startCli(['serve', modelFile, '--port', '0', '--host', '0.0.0.0'], { env: { VIDEO_RNN_API_KEY: '' } }).finished;
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /E_USAGE.*0\.0\.0\.0.*--insecure-no-auth/);
  const help = (await startCli(['serve', '--help']).finished).stdout.replace(/\s+/g, ' ');
  for (const [flag, value] of [['request-timeout-ms', 120000], ['headers-timeout-ms', 10000], ['keep-alive-timeout-ms', 5000]]) {
    assert.match(help, new RegExp(`--${flag} <ms> .*?\\(default: ${value}\\)`), `--${flag} defaults to ${value}`);
  }

  const uploads = fs.mkdtempSync(path.join(folder, 'uploads-'));
  // A process that has exited: its pid names a dead server's folder.
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => dead.once('exit', resolve));
  const stale = path.join(uploads, `video-rnn-upload-${dead.pid}-Ab12Cd`);
  const alive = path.join(uploads, `video-rnn-upload-${process.pid}-Ef34Gh`);
  const unnamed = path.join(uploads, 'video-rnn-upload-Ij56Kl');
  for (const kept of [stale, alive, unnamed]) {
    fs.mkdirSync(kept);
    fs.writeFileSync(path.join(kept, '0'), 'left behind');
  }
  const run = await startServe(['--insecure-no-auth', '--request-timeout-ms', '5000', '--headers-timeout-ms', '2000',
    '--keep-alive-timeout-ms', '1000'], {}, { host: '0.0.0.0', uploads });
  const { ready, lines } = run;
  try {
    assert.deepEqual(ready.timeouts, { requestMs: 5000, headersMs: 2000, idleMs: 60_000, keepAliveMs: 1000 });
    assert.ok(lines.some((line) => line.level === 40 && /--insecure-no-auth/.test(line.msg)), 'a warning says the server is open');
    const sweep = lines.find((line) => /no longer run/.test(line.msg ?? ''));
    assert.deepEqual(sweep?.swept, [stale]);
    assert.ok(!fs.existsSync(stale), 'the dead server\'s folder was removed');
    assert.ok(fs.existsSync(alive) && fs.existsSync(unnamed), 'a live server\'s folder, and one without a pid, stay');
    // Listening on every interface; this test connects through loopback only.
    const url = `http://127.0.0.1:${new URL(ready.address).port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const kept = await postRaw(url, videos[0], { headers: { 'x-request-id': 'client-trace-7' } });
    assert.equal(kept.status, 200);
    assert.equal(kept.headers.get('x-request-id'), 'client-trace-7');
    const replaced = await fetch(`${url}/healthz`, { headers: { 'x-request-id': `${'x'.repeat(200)}` } });
    assert.match(replaced.headers.get('x-request-id'), /^[0-9a-f-]{36}$/);
    const odd = await fetch(`${url}/healthz`, { headers: { 'x-request-id': 'a{b}"c' } });
    assert.match(odd.headers.get('x-request-id'), /^[0-9a-f-]{36}$/);
    // The server's clocks: headers that never end get 408 from Node within the headers timeout (checked
    // each second), and an idle keep-alive connection is closed after the keep-alive timeout.
    const port = Number(new URL(url).port);
    const clocks = [['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 2000],
      ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 1000]].map(async ([head, limitMs]) => {
      const socket = net.connect(port, '127.0.0.1');
      const started = performance.now();
      socket.write(head);
      let received = '';
      socket.setEncoding('latin1').on('data', (text) => { received += text; });
      await Promise.race([new Promise((resolve) => { socket.once('close', resolve); socket.once('error', () => undefined); }),
        new Promise((resolve) => setTimeout(resolve, limitMs + 4000))]);
      socket.destroy();
      return { received, ms: performance.now() - started, limitMs };
    });
    const [headers, keepAlive] = await Promise.all(clocks);
    assert.match(headers.received, /^HTTP\/1\.1 408/);
    assert.ok(headers.ms >= 2000 && headers.ms < 2000 + 2500, `headers cut after ${headers.ms} ms`);
    assert.match(keepAlive.received, /^HTTP\/1\.1 200/);
    assert.ok(keepAlive.ms >= 1000 && keepAlive.ms < 1000 + 2500, `keep-alive closed after ${keepAlive.ms} ms`);
    t.diagnostic(`headers never ending: 408 after ${Math.round(headers.ms)} ms; idle keep-alive closed after ${Math.round(keepAlive.ms)} ms`);
    const peak = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${run.child.pid}/status`, 'utf8'))[1];
    t.diagnostic(`server peak RSS ${Math.round(Number(peak) / 1024)} MB`);
  } finally {
    run.child.kill('SIGTERM');
  }
  assert.equal((await run.finished).code, 0);
  fs.rmSync(alive, { recursive: true });
  fs.rmSync(unnamed, { recursive: true });
  assertEmptyFolder(uploads, 'the server stopped');
});

test('a temp folder that does not exist stops the server at start, naming it', async () => {
  const missing = path.join(folder, 'no-such-folder');
  const result = await startCli(['serve', modelFile, '--port', '0', '--temp-dir', missing], { env: { VIDEO_RNN_API_KEY: '' } }).finished;
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /E_INVALID_ARGUMENT.*no-such-folder/);
});
