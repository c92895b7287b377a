// `train --nproc 2`: the command starts two worker processes that train as one data-parallel group on
// loopback. Only rank 0 prints and saves, and what it saves equals one process with the global batch.
// Every run starts from one backbone file written once, so what they save is small (LSTM and head).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { VideoRNN } from '../dist/index.js';
import { maxParameterDifference } from './helpers/clips.mjs';
import { temporaryFolder } from './helpers/media.mjs';
import { errorLines, parseJson, runCli, startCli, tinyDataset } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');
// SGD: Adam's normalisation magnifies the last-bit differences between summing 2x2 and 4 gradients.
const backbone = path.join(folder, 'vgg16.safetensors');
const settings = ['--hidden-size', '16', '--head-size', '16', '--frame-size', '32', '--epochs', '2', '--optimizer', 'sgd',
  '--lr', '0.05', '--seed', '3', '--json', '--weights', backbone];

before(async () => {
  await tinyDataset(datasetFolder);
  const random = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize: 16, frameSize: 32, seed: 3 });
  try {
    await random.saveBackbone(backbone);
  } finally {
    random.dispose();
  }
});


test('--nproc 2 with batch 2 per worker trains the same model as one process with batch 4', async () => {
  const parallel = path.join(folder, 'parallel.safetensors');
  const single = path.join(folder, 'single.safetensors');
  const two = await runCli(['train', datasetFolder, '-o', parallel, '--batch-size', '2', '--nproc', '2', ...settings], { timeoutMs: 240_000 });
  assert.equal(two.code, 0, two.stderr);
  assert.deepEqual(errorLines(two).filter((line) => /^\[rank|E_[A-Z]/.test(line)), [], 'no worker reported a problem');
  assert.equal(errorLines(two).filter((line) => /^epoch +2\/2 /.test(line)).length, 1, 'rank 0 alone shows progress');
  const report = parseJson(two);
  assert.equal(report.model, parallel, 'rank 0 alone printed one result');
  const one = await runCli(['train', datasetFolder, '-o', single, '--batch-size', '4', ...settings], { timeoutMs: 240_000 });
  assert.equal(one.code, 0, one.stderr);
  assert.ok(Math.abs(report.training.loss - parseJson(one).training.loss) < 1e-5);
  assert.ok(await maxParameterDifference(parallel, single) < 1e-5);
});

test('--nproc refuses --rank, and a worker error ends the launcher with the failure exit code', async () => {
  const usage = await runCli(['train', datasetFolder, '-o', path.join(folder, 'x.safetensors'), '--nproc', '2', '--rank', '0', ...settings]);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /E_INVALID_ARGUMENT: --nproc starts its own ranks/);
  // Both workers fail on the missing dataset; each prints its own one-line error, the launcher adds none.
  const missing = await runCli(['train', path.join(folder, 'nothing-here'), '-o', path.join(folder, 'y.safetensors'), '--nproc', '2', ...settings]);
  assert.equal(missing.code, 1);
  const lines = errorLines(missing);
  assert.equal(lines.length, 2, missing.stderr);
  assert.match(lines.find((line) => !line.startsWith('[rank 1]')), /^video-rnn: E_\w+: /);
  assert.match(lines.find((line) => line.startsWith('[rank 1]')), /^\[rank 1\] video-rnn: E_\w+: /);
});

test('Ctrl-C on the launcher stops both workers at the same step: exit 130 within seconds, not a timeout', async () => {
  const output = path.join(folder, 'interrupted.safetensors');
  const run = startCli(['train', datasetFolder, '-o', output, '--nproc', '2', '--batch-size', '2', '--epochs', '500',
    '--hidden-size', '16', '--head-size', '16', '--frame-size', '32', '--checkpoint-every', '1', '--weights', backbone]);
  let stderr = '';
  await new Promise((resolve, reject) => {
    run.child.stderr.on('data', (text) => {
      stderr += text;
      if (/^epoch +2\//m.test(stderr)) resolve();
    });
    run.finished.then((early) => reject(new Error(`the run ended before its second epoch: ${early.stderr}`)));
  });
  const interruptedAt = Date.now();
  run.child.kill('SIGINT');
  const result = await run.finished;
  assert.equal(result.code, 130, result.stderr);
  assert.ok(Date.now() - interruptedAt < 20000, `stopped ${Date.now() - interruptedAt} ms after Ctrl-C`);
  assert.match(result.stderr, /^video-rnn: E_ABORTED: training was interrupted in epoch \d+; .* holds the last checkpoint/m);
  assert.match(result.stderr, /^\[rank 1\] video-rnn: E_ABORTED: rank 1 of 2 stopped with the group$/m);
  assert.doesNotMatch(result.stderr, /E_DISTRIBUTED/);
});

test('the workers get the command without the launcher options, and cuda means their own GPU', async () => {
  const { workerArguments, workerDevice, distributedFrom } = await import('../dist/cli/launch.js');
  assert.deepEqual(workerArguments(['cli.js', 'train', 'data', '--nproc', '2', '--threads=3', '--master-port', '4000', '-o', 'm.safetensors',
    '--node-rank=0', '--epochs', '2']), ['cli.js', 'train', 'data', '-o', 'm.safetensors', '--epochs', '2']);
  assert.deepEqual(workerArguments(['cli.js', 'predict', 'm', '--', '--nproc']), ['cli.js', 'predict', 'm', '--', '--nproc']);
  assert.equal(workerDevice('cuda', { LOCAL_RANK: '1', WORLD_SIZE: '4' }), 'cuda:1');
  assert.equal(workerDevice('cuda', {}), 'cuda');
  assert.equal(workerDevice('cpu', { LOCAL_RANK: '1', WORLD_SIZE: '4' }), 'cpu');
  const flags = { nnodes: 1, nodeRank: 0 };
  assert.equal(distributedFrom(flags, 'cpu', {}), undefined, 'alone without WORLD_SIZE');
  assert.deepEqual(distributedFrom(flags, 'cpu', { WORLD_SIZE: '2', RANK: '1' }), { backend: 'gloo' });
  assert.deepEqual(distributedFrom({ ...flags, rank: 1, worldSize: 2, masterPort: 7000 }, 'cuda:0', {}),
    { rank: 1, worldSize: 2, masterPort: 7000, backend: 'nccl' });
  assert.throws(() => distributedFrom({ ...flags, rank: 1 }, 'cpu', {}), { code: 'E_INVALID_ARGUMENT' });
});
