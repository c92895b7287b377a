// --allow-paths: a JSON body may name files, read only when they resolve (after symlinks) inside DIR.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { assertError, json, startServer } from './helpers/serve.mjs';

const root = temporaryFolder(after);
let model;
let server;
let allowed;
let outside;
let expected;
before(async () => {
  model = await VideoRNN.create({ classes: ['a', 'b'], hiddenSize: 8, headSize: 8, frameSize: 32, seed: 8 });
  allowed = path.join(root, 'allowed');
  const dataset = await makeSyntheticDataset(allowed, { classes: ['left', 'right'], perClass: 1, size: 32, minFrames: 3, maxFrames: 4, seed: 9 });
  const inside = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index).source);
  outside = path.join(root, 'outside.mp4');
  fs.copyFileSync(inside[0], outside);
  fs.symlinkSync(outside, path.join(allowed, 'link-out.mp4'));
  fs.symlinkSync(root, path.join(allowed, 'folder-out'));
  fs.symlinkSync(inside[1], path.join(allowed, 'link-in.mp4'));
  expected = { inside: await model.predict(inside), files: inside };
  server = await startServer({ model, allowPaths: allowed, processMetrics: false });
});
after(async () => {
  await server?.app.close();
  model.dispose();
});

function postPaths(body) {
  return fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

test('paths inside DIR are read: absolute, relative to DIR, and through a link that stays inside', async () => {
  const relative = path.relative(allowed, expected.files[1]);
  const response = await postPaths({ paths: [expected.files[0], relative, 'link-in.mp4'] });
  const body = await json(response);
  assert.equal(response.status, 200, JSON.stringify(body));
  const wanted = [expected.inside[0], expected.inside[1], expected.inside[1]];
  body.predictions.forEach((prediction, index) => {
    for (const label of model.classes) assert.ok(Math.abs(prediction.probabilities[label] - wanted[index].probabilities[label]) < 1e-6);
  });
});

test('"../", an absolute path outside, and symlinks out of DIR are refused with 403', async () => {
  const attempts = [
    { path: '../outside.mp4' },
    { path: outside },
    { path: 'link-out.mp4' },
    { path: 'folder-out/outside.mp4' },
    { paths: [expected.files[0], `${path.basename(allowed)}/../../outside.mp4`] },
  ];
  for (const body of attempts) {
    const error = await assertError(await postPaths(body), 403, 'E_FORBIDDEN_PATH');
    assert.doesNotMatch(error.error.message, /outside\.mp4/, 'the refusal does not echo the path');
  }
});

test('a missing file inside DIR is 422, a malformed body 400', async () => {
  await assertError(await postPaths({ path: 'missing.mp4' }), 422, 'E_VIDEO_NOT_FOUND');
  await assertError(await postPaths({ paths: [] }), 400, 'E_INVALID_ARGUMENT');
  await assertError(await postPaths({ path: 42 }), 400, 'E_INVALID_ARGUMENT');
  await assertError(await postPaths({ path: 'a\u0000b' }), 400, 'E_INVALID_ARGUMENT');
  await assertError(await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path": ' }),
    400, 'E_INVALID_ARGUMENT');
});

test('a JSON body has its own small limit: 1 KB plus 4 KB a path (maxFiles 16: 66,560 bytes), then 413', async () => {
  const padding = ' '.repeat(70_000);
  await assertError(await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: `{"path": "link-in.mp4"${padding}}` }), 413, 'E_PAYLOAD_TOO_LARGE');
  const response = await fetch(`${server.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: `{"path": "link-in.mp4"${' '.repeat(60_000)}}` });
  assert.equal(response.status, 200, 'a body under the limit passes');
});
