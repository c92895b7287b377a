// The hostile decoding cases of test/video.hostile.test.mjs, uploaded to a real `video-rnn serve`
// child process. After each: the coded answer, /healthz and a normal predict still answer, no upload
// folder is left, and the server's own peak RSS (VmHWM, reset before each case) is recorded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN } from '../dist/index.js';
import { runCli, startCli } from './cli.run.mjs';
import { connectionCounter, dashManifest, ffconcatList, hlsPlaylist, understateMp4 } from './helpers/hostile.mjs';
import { renderColourSegments, runFfmpeg, temporaryFolder } from './helpers/media.mjs';
import { json } from './helpers/serve.mjs';

const folder = temporaryFolder(after);
const allowed = path.join(folder, 'allowed');
const made = path.join(folder, 'made');
let counter;
let normal; // the clip a normal predict sends
let expected; // what the model answers for it
const servers = [];
let long; // 16x16, 120 fps, 600 s: 72,000 frames in 0.9 MB
let plain; // default sampling, --max-pixels 200000
let sampled; // sampling { maxFrames: 8 }, --video-formats default,gif

function ffmpegFile(name, args) {
  const file = path.join(made, name);
  runFfmpeg([...args, file]);
  return file;
}

async function saveModel(name, sampling) {
  const model = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 5, sampling });
  const file = path.join(folder, name);
  await model.save(file);
  if (sampling === undefined) expected = (await model.predict(normal))[0];
  model.dispose();
  return file;
}

/** `video-rnn serve` on a free port; resolves once its "ready" log line names the address. */
async function startServe(modelFile, args) {
  const uploads = fs.mkdtempSync(path.join(folder, 'uploads-'));
  const run = startCli(['serve', modelFile, '--port', '0', '--host', '127.0.0.1', '--temp-dir', uploads,
    '--allow-paths', allowed, ...args], { env: { VIDEO_RNN_API_KEY: '' }, timeoutMs: 300_000 });
  let stderr = '';
  run.child.stderr.on('data', (text) => { stderr += text; });
  const url = await new Promise((resolve, reject) => {
    let buffered = '';
    run.child.stdout.on('data', (text) => {
      buffered += text;
      const match = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(buffered) ?? /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(buffered);
      if (match) resolve(match[1]);
    });
    run.finished.then((result) => reject(new Error(`the server exited before it was ready: ${result.stdout} ${stderr}`)));
  });
  const server = { ...run, url, uploads, pid: run.child.pid, stderr: () => stderr };
  servers.push(server);
  return server;
}

before(async () => {
  fs.mkdirSync(allowed);
  fs.mkdirSync(made);
  counter = await connectionCounter();
  normal = renderColourSegments(path.join(made, 'normal.mp4'), { names: ['red', 'blue'], seconds: 1, fps: 4, width: 32, height: 32 });
  long = ffmpegFile('long.mp4', ['-f', 'lavfi', '-i', 'color=c=gray:s=16x16:r=120:d=600',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '51']);
  const [plainModel, sampledModel] = [await saveModel('model.safetensors'), await saveModel('sampled.safetensors', { maxFrames: 8 })];
  // --max-pixels low enough that a 640x640 picture is refused inside ffmpeg; --max-video-seconds
  // stays at its default (600), which the 600 s file meets exactly. Both start at once.
  [plain, sampled] = await Promise.all([startServe(plainModel, ['--max-pixels', '200000']),
    startServe(sampledModel, ['--video-formats', 'default,gif'])]);
});

after(async () => {
  for (const server of servers) {
    server.child.kill('SIGTERM');
    await server.finished;
  }
  await counter?.close();
});

function status(pid, field) {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
}

/** Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS. */
function resetPeak(pid) {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function upload(url, file) {
  return fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'video/mp4' }, body: fs.readFileSync(file) });
}

function byPath(url, file) {
  return fetch(`${url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: path.relative(allowed, file) }) });
}

/** One case: its answer, then the server's health, a normal predict and its temp folder. */
async function runCase(server, rows, name, send, want) {
  resetPeak(server.pid);
  const started = performance.now();
  const response = await send();
  const body = await json(response);
  const ms = performance.now() - started;
  const peak = status(server.pid, 'VmHWM');
  rows.push({ name, status: response.status, code: body.error?.code ?? 'ok', ms, peak });
  assert.equal(response.status, want.status, `${name}: ${JSON.stringify(body)}`);
  if (want.code !== undefined) assert.equal(body.error?.code, want.code, `${name}: ${JSON.stringify(body)}`);
  if (want.message !== undefined) assert.match(body.error.message, want.message, name);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200, `${name}: /healthz afterwards`);
  const check = await upload(server.url, normal);
  const prediction = await json(check);
  assert.equal(check.status, 200, `${name}: a normal predict afterwards: ${JSON.stringify(prediction)}`);
  assert.ok(Math.abs(prediction.predictions[0].probabilities.left - expected.probabilities.left) < 1e-5, `${name}: same answer`);
  assert.deepEqual(fs.readdirSync(server.uploads).filter((entry) => entry.startsWith('video-rnn-upload-')), [],
    `${name}: no upload folder left`);
  return body;
}

/** The rows as a Markdown table, one diagnostic line each (TAP keeps a diagnostic to one line). */
function report(t, title, rows) {
  t.diagnostic(title);
  t.diagnostic('| case | status | code | ms | server peak RSS MB |');
  t.diagnostic('| --- | --- | --- | --- | --- |');
  for (const row of rows) t.diagnostic(`| ${row.name} | ${row.status} | ${row.code} | ${row.ms.toFixed(0)} | ${row.peak.toFixed(0)} |`);
}

test('hostile uploads to one server: coded answers, and the server keeps serving', async (t) => {
  const server = plain;
  const rows = [];
  const refused = { status: 422, code: 'E_VIDEO_DECODE', message: /not among the allowed formats/ };
  const other = renderColourSegments(path.join(folder, 'secret.mp4'), { names: ['green'], seconds: 1, fps: 4, width: 32, height: 32 });
  const write = (name, content) => {
    const file = path.join(made, name);
    fs.writeFileSync(file, content);
    return file;
  };
  const up = '../'.repeat(24) + other.slice(1);

  await runCase(server, rows, 'HLS, file:// segment', () => upload(server.url, write('hls-file', hlsPlaylist(`file://${other}`))), refused);
  await runCase(server, rows, 'HLS, relative segment', () => upload(server.url, write('hls-relative', hlsPlaylist(up))), refused);
  await runCase(server, rows, 'HLS, http:// segment', () => upload(server.url, write('hls-http', hlsPlaylist(`${counter.url}/a.ts`))), refused);
  fs.writeFileSync(path.join(allowed, 'list.m3u8'), hlsPlaylist('other.mp4'));
  fs.copyFileSync(other, path.join(allowed, 'other.mp4'));
  await runCase(server, rows, 'HLS .m3u8 under --allow-paths', () => byPath(server.url, path.join(allowed, 'list.m3u8')), refused);
  await runCase(server, rows, 'DASH manifest', () => upload(server.url, write('dash', dashManifest(counter.url))), refused);
  await runCase(server, rows, 'ffconcat, absolute name', () => upload(server.url, write('concat-absolute', ffconcatList(other))), refused);
  await runCase(server, rows, 'ffconcat, relative name', () => upload(server.url, write('concat-relative', ffconcatList(up))), refused);
  fs.writeFileSync(path.join(allowed, 'list.ffconcat'), ffconcatList('other.mp4'));
  await runCase(server, rows, 'ffconcat under --allow-paths', () => byPath(server.url, path.join(allowed, 'list.ffconcat')), refused);
  assert.equal(counter.connections, 0, 'no connection reached the listener');

  await runCase(server, rows, '72,000 frames (0.9 MB), default sampling', () => upload(server.url, long),
    { status: 422, code: 'E_VIDEO_DECODE', message: /more than 3000 frames \(maxClipFrames\)/ });
  assert.ok(rows.at(-1).peak < 1536, `peak RSS ${rows.at(-1).peak.toFixed(0)} MB`);

  const segments = renderColourSegments(path.join(made, 'segments.mp4'), { names: ['red', 'green', 'blue', 'white'],
    seconds: 2, fps: 8, width: 32, height: 32,
    outputArgs: ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-pix_fmt', 'yuv420p', '-use_editlist', '0'] });
  const lying = understateMp4(segments, path.join(made, 'lying.mp4'), 10);
  const truth = await json(await upload(server.url, segments));
  const answer = await runCase(server, rows, 'header claims 6 frames / 0.8 s, holds 64 / 8 s', () => upload(server.url, lying),
    { status: 200 });
  assert.ok(Math.abs(answer.predictions[0].probabilities.left - truth.predictions[0].probabilities.left) < 1e-6,
    'the same answer as for the honest file: every frame was decoded');
  // 700 s at 2 fps (1400 frames, under the frame cap), header understated to 70 s: decoded time refuses it.
  const slow = ffmpegFile('slow.mp4', ['-f', 'lavfi', '-i', 'color=c=gray:s=16x16:r=2:d=700',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-use_editlist', '0']);
  const slowLying = understateMp4(slow, path.join(made, 'slow-lying.mp4'), 10);
  await runCase(server, rows, 'header claims 70 s, decodes to 700 s', () => upload(server.url, slowLying),
    { status: 422, code: 'E_VIDEO_DECODE', message: /decoded video runs past/ });

  const huge = ffmpegFile('huge.mp4', ['-f', 'lavfi', '-i', 'color=c=gray:s=7700x4400:r=1:d=1', '-frames:v', '1',
    '-c:v', 'libx264', '-preset', 'ultrafast']);
  await runCase(server, rows, '7700x4400 picture (33.9 MP)', () => upload(server.url, huge), { status: 422, code: 'E_VIDEO_DECODE', message: /maxPixels/ });
  const small = ffmpegFile('small.h264', ['-f', 'lavfi', '-i', 'color=c=red:s=32x32:r=10:d=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'h264']);
  const large = ffmpegFile('large.h264', ['-f', 'lavfi', '-i', 'color=c=blue:s=640x640:r=10:d=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'h264']);
  const mixed = write('mixed.h264', Buffer.concat([fs.readFileSync(small), fs.readFileSync(large)]));
  await runCase(server, rows, '32x32 then 640x640 mid-stream', () => upload(server.url, mixed),
    { status: 422, code: 'E_VIDEO_DECODE', message: /640x640.*maxPixels/ });

  await runCase(server, rows, 'zero bytes', () => upload(server.url, write('empty', Buffer.alloc(0))), { status: 400, code: 'E_INVALID_ARGUMENT' });
  const blocks = [crypto.createHash('sha512').update('seed').digest()];
  while (blocks.length < 1024) blocks.push(crypto.createHash('sha512').update(blocks.at(-1)).digest());
  await runCase(server, rows, 'random bytes (64 KiB)', () => upload(server.url, write('random', Buffer.concat(blocks))),
    { status: 422, code: 'E_VIDEO_DECODE' });
  const whole = fs.readFileSync(segments);
  await runCase(server, rows, 'truncated MP4', () => upload(server.url, write('truncated', whole.subarray(0, whole.length >> 1))),
    { status: 422, code: 'E_VIDEO_DECODE' });
  const fifo = path.join(allowed, 'fifo.mp4');
  execFileSync('mkfifo', [fifo]);
  await runCase(server, rows, 'FIFO under --allow-paths', () => byPath(server.url, fifo), { status: 422, code: 'E_VIDEO_DECODE', message: /FIFO/ });
  assert.ok(rows.find((row) => row.name === 'FIFO under --allow-paths').ms < 5000, 'the FIFO is refused at once');
  report(t, 'hostile uploads, one server (VmHWM reset before each case; the model alone holds most of it):', rows);
});

test('a model sampling maxFrames: the long file decodes to evenly spread frames; --video-formats widens', async (t) => {
  const server = sampled;
  const rows = [];
  await runCase(server, rows, '72,000 frames, sampling maxFrames 8', () => upload(server.url, long), { status: 200 });
  const gif = ffmpegFile('clip.gif', ['-f', 'lavfi', '-i', 'color=c=red:s=32x32:r=4:d=1']);
  await runCase(server, rows, 'GIF with --video-formats default,gif', () => upload(server.url, gif), { status: 200 });
  report(t, 'hostile uploads, a model sampling maxFrames 8:', rows);
});

test('the command line: --max-clip-frames refuses a longer clip', async () => {
  const modelFile = path.join(folder, 'model.safetensors');
  // The normal clip has 8 frames; the model reads every frame.
  const refused = await runCli(['predict', modelFile, normal, '--json', '--max-clip-frames', '5']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /E_VIDEO_DECODE: .*more than 5 frames \(maxClipFrames\)/);
});
