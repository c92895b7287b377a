// Ctrl-C during training: the run stops at a batch boundary, exits 130, and the last checkpoint
// written with --checkpoint-every stays a complete, loadable model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { VideoRNN } from '../dist/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { errorLines, startCli, tinyDataset, tinyModel } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');

before(async () => {
  await tinyDataset(datasetFolder, 12);
});

async function waitFor(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

test('SIGINT during training exits 130 and leaves the last checkpoint loadable', async () => {
  const output = path.join(folder, 'checkpoints', 'model.safetensors');
  fs.mkdirSync(path.dirname(output));
  // Far more epochs than can run before the signal: the run only ends by being interrupted.
  const run = startCli(['train', datasetFolder, '-o', output, ...tinyModel, '--epochs', '100000', '--checkpoint-every', '1'],
    { timeoutMs: 180_000 });
  let stderr = '';
  run.child.stderr.on('data', (text) => { stderr += text; });
  // The second epoch line means a checkpoint was written and training goes on.
  await waitFor(() => /^epoch\s+2\/100000 /m.test(stderr) || run.child.exitCode !== null, 150_000, 'two epochs');
  assert.equal(run.child.exitCode, null, `still training: ${stderr}`);
  run.child.kill('SIGINT');
  const result = await run.finished;
  assert.equal(result.signal, null, 'the process handled the signal itself');
  assert.equal(result.code, 130, result.stderr);
  const lines = errorLines(result);
  assert.match(lines.at(-1), /^video-rnn: E_ABORTED: training was interrupted in epoch \d+; .*model\.safetensors holds the last checkpoint, saved at /);
  assert.ok(lines.some((line) => line.startsWith('interrupted: stopping at the next batch boundary')));
  // Only the finished checkpoint and its training state are there: no half-written temporary file beside them.
  assert.deepEqual(fs.readdirSync(path.dirname(output)).sort(), ['model.safetensors', 'model.safetensors.state']);
  const model = await VideoRNN.load(output);
  try {
    assert.deepEqual(model.classes, ['left', 'right']);
    assert.equal(model.config.hiddenSize, 16);
  } finally {
    model.dispose();
  }
});

test('SIGINT without --checkpoint-every says that nothing was saved', async () => {
  const output = path.join(folder, 'unsaved.safetensors');
  const run = startCli(['train', datasetFolder, '-o', output, ...tinyModel, '--epochs', '100000'], { timeoutMs: 180_000 });
  let stderr = '';
  run.child.stderr.on('data', (text) => { stderr += text; });
  await waitFor(() => /^epoch\s+1\/100000 /m.test(stderr) || run.child.exitCode !== null, 150_000, 'one epoch');
  run.child.kill('SIGINT');
  const result = await run.finished;
  assert.equal(result.code, 130, result.stderr);
  assert.match(errorLines(result).at(-1), /^video-rnn: E_ABORTED: .*no model was saved/);
  assert.equal(fs.existsSync(output), false);
});
