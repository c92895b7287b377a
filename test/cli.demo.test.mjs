// `video-rnn demo` end to end, as the quick start runs it: renders, trains, evaluates on held-out
// clips, saves, reloads and predicts, within the time the README promises.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { VideoRNN } from '../dist/index.js';
import { locateFfmpeg } from '../dist/video/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { parseJson, runCli } from './cli.run.mjs';

const folder = temporaryFolder(after);

// How long the demo takes is a benchmark's business, not this test's: the limits below only stop a hang.
test('demo --json reaches at least 0.9 accuracy on held-out clips it never trained on', { timeout: 620_000 }, async () => {
  const result = await runCli(['demo', '--json', '--dir', folder], { timeoutMs: 600_000 });
  assert.equal(result.code, 0, result.stderr);
  const demo = parseJson(result);
  assert.deepEqual(demo.classes, ['left', 'right']);
  assert.deepEqual(demo.clips, { train: 32, test: 16, fresh: 4 });
  assert.equal(demo.training.epochs.length, 15);
  assert.equal(demo.evaluation.count, 16);
  assert.ok(demo.evaluation.accuracy >= 0.9, `held-out accuracy ${demo.evaluation.accuracy}`);
  assert.equal(demo.evaluation.confusion.flat().reduce((sum, value) => sum + value, 0), 16);
  // The held-out clips share the training clips' names (left/left_000.mp4, ...): the accuracy is theirs
  // only if the evaluation decoded each of them and ran VGG16 on every one of their frames (ffprobe counts).
  const testFiles = ['left', 'right'].flatMap((label) => fs.readdirSync(path.join(folder, 'test', label)).map((name) => path.join(folder, 'test', label, name)));
  assert.equal(testFiles.length, 16);
  const frames = testFiles.reduce((sum, file) => sum + Number(execFileSync(locateFfmpeg().ffprobe, ['-v', 'error', '-count_frames',
    '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file], { encoding: 'utf8' }).trim()), 0);
  assert.deepEqual(demo.heldOut, { videosDecoded: 16, framesEmbedded: frames, cacheHits: 0 });

  assert.equal(demo.predictions.length, 4);
  for (const prediction of demo.predictions) {
    assert.equal(prediction.truth, prediction.video.split('/')[0], 'the truth is the folder of the clip');
    assert.ok(fs.existsSync(path.join(folder, 'fresh', prediction.video)));
  }
  const right = demo.predictions.filter((prediction) => prediction.label === prediction.truth).length;
  assert.ok(right >= 3, `${right} of 4 fresh clips classified correctly`);

  // With --dir the model stays, and it is the one that made the predictions.
  assert.equal(demo.model.path, path.join(folder, 'model.safetensors'));
  assert.equal(fs.statSync(demo.model.path).size, demo.model.bytes);
  const model = await VideoRNN.load(demo.model.path);
  try {
    const [again] = await model.predict(path.join(folder, 'fresh', demo.predictions[0].video));
    assert.ok(Math.abs(again.score - demo.predictions[0].score) < 1e-5);
  } finally {
    model.dispose();
  }
  // Progress and status went to stderr; stdout held only the JSON.
  assert.match(result.stderr, /^epoch 15\/15 /m);
});
