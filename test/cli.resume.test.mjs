// `train --resume`: a run killed (SIGKILL, no chance to clean up) after its epoch-3 checkpoint and then
// resumed ends with the weights of a run that was never interrupted. Every run starts from one backbone
// file written once, so checkpoints and states are small (LSTM and head) and reference it. Each test
// runs alone (--test-name-pattern): the runs several tests compare against are made once, before them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { maxParameterDifference } from './helpers/clips.mjs';
import { childProcesses, temporaryFolder } from './helpers/media.mjs';
import { VideoRNN } from '../dist/index.js';
import { readSafetensors } from '../dist/weights/index.js';
import { parseJson, runCli, startCli, tinyDataset } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');
// Adam with momentum in both moments: a resume that lost them, or the step counts, drifts far past 1e-5.
const backbone = path.join(folder, 'vgg16.safetensors');
const settings = ['--hidden-size', '8', '--head-size', '8', '--frame-size', '32', '--optimizer', 'adam', '--lr', '0.01',
  '--seed', '5', '--batch-size', '2', '--json', '--threads', '1', '--weights', backbone];

before(async () => {
  await tinyDataset(datasetFolder);
  const random = await VideoRNN.create({ classes: ['left', 'right'], hiddenSize: 8, frameSize: 32, seed: 5 });
  try {
    await random.saveBackbone(backbone);
  } finally {
    random.dispose();
  }
  // The reference runs, side by side (one thread each).
  await Promise.all([fullRun(), threeRun()]);
});

/** Runs `args` once; every call gives that run. */
function once(args) {
  let result;
  return () => {
    result ??= runCli(args, { timeoutMs: 240_000 }).then((run) => {
      assert.equal(run.code, 0, run.stderr);
      return run;
    });
    return result;
  };
}

const full = path.join(folder, 'full.safetensors');
const three = path.join(folder, 'three.safetensors');
// Uninterrupted, 6 epochs; and the same settings for 3 epochs, whose checkpoint is the epoch-3 one of a 6-epoch run.
const fullRun = once(['train', datasetFolder, '-o', full, '--epochs', '6', ...settings]);
const threeRun = once(['train', datasetFolder, '-o', three, '--epochs', '3', '--checkpoint-every', '3', ...settings]);

/** Starts the command and SIGKILLs it once its stderr matches `line`; resolves with the run's end. */
async function killWhen(args, line) {
  const run = startCli(args, { timeoutMs: 240_000 });
  let stderr = '';
  run.child.stderr.on('data', (text) => {
    stderr += text;
    if (line.test(stderr)) run.child.kill('SIGKILL');
  });
  return run.finished;
}

async function stateOf(model) {
  const { metadata, tensors } = await readSafetensors(`${model}.state`);
  return { metadata, state: JSON.parse(metadata.state), tensors };
}

test('a run SIGKILLed after epoch 3 of 6 and resumed ends with the weights of an uninterrupted run (Adam, 1e-5)', async (t) => {
  await fullRun();

  const part = path.join(folder, 'part.safetensors');
  // Checkpoints after epochs 3 and 6 only: killed once epoch 4 has ended, the files hold epoch 3.
  const killed = await killWhen(['train', datasetFolder, '-o', part, '--epochs', '6', '--checkpoint-every', '3', ...settings], /^epoch +4\/6 /m);
  assert.equal(killed.signal, 'SIGKILL', `the run was not killed: ${killed.stderr}`);
  const saved = await stateOf(part);
  assert.equal(saved.state.epoch, 3);
  assert.equal(saved.metadata.format, 'video-rnn-training-state');
  // Adam's two moments for every trained tensor, and a step count of 3 epochs x 4 batches each.
  const moments = [...saved.tensors.keys()].filter((name) => /\.exp_avg(_sq)?$/.test(name));
  assert.ok(moments.length >= 2 * 6, `only ${moments.length} moment tensors`);
  assert.ok(Object.values(saved.state.steps).every((step) => step === 12), JSON.stringify(saved.state.steps));
  assert.ok(Object.keys(saved.state.steps).length * 2 === moments.length);
  // Small files: the LSTM and head with the backbone referenced, and their optimiser state.
  const sizes = [part, `${part}.state`].map((file) => fs.statSync(file).size);
  t.diagnostic(`checkpoint ${sizes[0]} bytes, state ${sizes[1]} bytes`);
  assert.ok(sizes[0] < 2e6 && sizes[1] < 3 * sizes[0], `checkpoint and state are small: ${sizes}`);

  const resumed = await runCli(['train', datasetFolder, '-o', part, '--epochs', '6', '--resume', part, '--checkpoint-every', '3', ...settings],
    { timeoutMs: 240_000 });
  assert.equal(resumed.code, 0, resumed.stderr);
  const report = parseJson(resumed);
  assert.deepEqual(report.training.epochs.map((epoch) => epoch.epoch), [4, 5, 6], 'the resumed run trains epochs 4 to 6 only');
  const gap = await maxParameterDifference(part, full);
  t.diagnostic(`resumed vs uninterrupted: largest weight difference ${gap}`);
  assert.ok(gap < 1e-5, `weights differ by ${gap}`);
  assert.equal((await stateOf(part)).state.epoch, 6);
});

test('without its moments the resumed run drifts: the state file is what makes it equal', async () => {
  await Promise.all([fullRun(), threeRun()]);
  const cold = path.join(folder, 'cold.safetensors');
  // A copy of the epoch-3 checkpoint with the same weights, epoch and settings, but an empty optimiser
  // state: what a resume without moments would do.
  const start = path.join(folder, 'cold-start.safetensors');
  fs.copyFileSync(three, start);
  const { metadata, tensors } = await readSafetensors(`${three}.state`);
  const { writeSafetensors } = await import('../dist/weights/index.js');
  const empty = new Map([...tensors].filter(([name]) => name === 'torch.cpu_generator'));
  await writeSafetensors(`${start}.state`, empty, { ...metadata, state: JSON.stringify({ ...JSON.parse(metadata.state), steps: {} }) });
  const again = await runCli(['train', datasetFolder, '-o', cold, '--epochs', '6', '--resume', start, ...settings], { timeoutMs: 240_000 });
  assert.equal(again.code, 0, again.stderr);
  assert.ok(await maxParameterDifference(cold, full) > 1e-3, 'a resume without the optimiser state is not the same run');
});

test('--resume refuses a state that belongs to another save of the model, and a missing one', async () => {
  await Promise.all([fullRun(), threeRun()]);
  const other = path.join(folder, 'other.safetensors');
  fs.copyFileSync(full, other);
  fs.copyFileSync(`${three}.state`, `${other}.state`);
  const mismatch = await runCli(['train', datasetFolder, '-o', path.join(folder, 'x.safetensors'), '--epochs', '6', '--resume', other, ...settings]);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /E_CHECKPOINT: cannot resume from .*other\.safetensors: .*another version of the model file/);
  fs.rmSync(`${other}.state`);
  const missing = await runCli(['train', datasetFolder, '-o', path.join(folder, 'x.safetensors'), '--epochs', '6', '--resume', other, ...settings]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /E_CHECKPOINT: cannot resume from .*other\.safetensors: its training state .*other\.safetensors\.state cannot be read/);
});

test('with 2 ranks (--nproc 2): workers SIGKILLed after epoch 3 of 6, then --resume, equal the uninterrupted 2-rank run', async (t) => {
  const parallel = ['--nproc', '2', '--batch-size', '1'];
  const full = path.join(folder, 'full2.safetensors');
  const uninterrupted = await runCli(['train', datasetFolder, '-o', full, '--epochs', '6', ...settings, ...parallel], { timeoutMs: 240_000 });
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const part = path.join(folder, 'part2.safetensors');
  const run = startCli(['train', datasetFolder, '-o', part, '--epochs', '6', '--checkpoint-every', '3', ...settings, ...parallel],
    { timeoutMs: 240_000 });
  let stderr = '';
  let victims = [];
  run.child.stderr.on('data', (text) => {
    stderr += text;
    if (victims.length === 0 && /^epoch +4\/6 /m.test(stderr)) {
      // Both workers die at once, as when their machine goes; the launcher is left to report it.
      // Not the helper process that starts ffmpeg (src/video/launcher.ts), if the launcher has one.
      victims = childProcesses(run.child.pid).filter((child) => !child.command.startsWith('video-rnn-ff')).map((child) => child.pid);
      for (const pid of victims) process.kill(pid, 'SIGKILL');
    }
  });
  const killed = await run.finished;
  assert.equal(victims.length, 2, 'the launcher ran two workers');
  assert.equal(killed.code, 1, killed.stderr);
  assert.equal((await stateOf(part)).state.epoch, 3);
  assert.equal((await stateOf(part)).state.worldSize, 2);

  const resumed = await runCli(['train', datasetFolder, '-o', part, '--epochs', '6', '--resume', part, ...settings, ...parallel],
    { timeoutMs: 240_000 });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(parseJson(resumed).training.epochs.map((epoch) => epoch.epoch), [4, 5, 6]);
  const gap = await maxParameterDifference(part, full);
  t.diagnostic(`2 ranks, resumed vs uninterrupted: largest weight difference ${gap}`);
  assert.ok(gap < 1e-5, `weights differ by ${gap}`);
});
