// --precision on the command line, and what `info` says about bf16 on this CPU. The CPU's flags are
// read here from /proc/cpuinfo, independently of the code under test; a bf16 run must give other
// probabilities than an fp32 run of the same model (autocast really ran) that still agree closely.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeSyntheticDataset } from '../dist/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { errorLines, parseJson, runCli, tinyModel } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');
const modelFile = path.join(folder, 'model.safetensors');
const emulatedWarning = /^video-rnn: warning: .*no native bf16.*slower than fp32/m;

/** bf16 flags of the first processor, or null where /proc/cpuinfo does not say (not x86-64 Linux). */
function bf16Flags() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((line) => line.startsWith('flags'));
  const words = flags.slice(flags.indexOf(':') + 1).trim().split(/\s+/);
  return ['avx512_bf16', 'amx_bf16'].filter((flag) => words.includes(flag));
}
const found = bf16Flags();
const emulated = found !== null && found.length === 0;

let dataset;
let trained;

before(async () => {
  // Four clips: one epoch is enough to show a bf16 run trains and saves a model that loads.
  dataset = await makeSyntheticDataset(datasetFolder, { classes: ['left', 'right'], perClass: 2, size: 32, minFrames: 4, maxFrames: 6, seed: 5 });
  trained = await runCli(['train', datasetFolder, '-o', modelFile, ...tinyModel, '--epochs', '1', '--precision', 'bf16', '--json', '--quiet']);
});

test('info --json states native bf16 as /proc/cpuinfo does, and warns when it is missing', async () => {
  const result = await runCli(['info', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const info = parseJson(result);
  assert.deepEqual(info.cpuBf16, { native: found === null ? null : found.length > 0, features: found ?? [] });
  assert.equal(info.warnings.some((warning) => /no native bf16/.test(warning)), emulated);
  assert.equal(emulatedWarning.test(result.stderr), emulated, result.stderr);
});

test('info prints a cpu bf16 line naming the flags it found', async () => {
  const result = await runCli(['info']);
  assert.equal(result.code, 0, result.stderr);
  const line = /^cpu bf16:\s+(.*)$/m.exec(result.stdout)?.[1];
  if (found === null) assert.match(line, /^unknown/);
  else if (found.length > 0) assert.equal(line, `native (${found.join(', ')})`);
  else assert.match(line, /^no \(.*slower than fp32\)$/);
  assert.equal(emulatedWarning.test(result.stderr), emulated, result.stderr);
});

test('train --precision bf16 trains an epoch and saves a model that predict loads', async () => {
  assert.equal(trained.code, 0, trained.stderr);
  const report = parseJson(trained);
  assert.equal(report.precision, 'bf16');
  assert.equal(report.training.epochs.length, 1);
  assert.ok(Number.isFinite(report.training.loss) && report.training.loss > 0);
  assert.equal(report.modelBytes, fs.statSync(modelFile).size);
  assert.equal(emulatedWarning.test(trained.stderr), emulated, trained.stderr);
  assert.deepEqual(errorLines(trained), []);
});

test('predict --precision bf16 gives probabilities close to, and not equal to, fp32', async () => {
  const videos = [dataset.sample(0).source, dataset.sample(dataset.size - 1).source];
  const fp32 = await runCli(['predict', modelFile, ...videos, '--precision', 'fp32', '--json']);
  const bf16 = await runCli(['predict', modelFile, ...videos, '--precision', 'bf16', '--json']);
  assert.equal(fp32.code, 0, fp32.stderr);
  assert.equal(bf16.code, 0, bf16.stderr);
  const [full, half] = [parseJson(fp32), parseJson(bf16)];
  assert.equal(full.precision, 'fp32');
  assert.equal(half.precision, 'bf16');
  let largest = 0;
  for (const [index, prediction] of full.predictions.entries()) {
    for (const label of full.classes) {
      largest = Math.max(largest, Math.abs(prediction.probabilities[label] - half.predictions[index].probabilities[label]));
    }
  }
  assert.equal(full.predictions.length, 2);
  assert.ok(largest > 1e-6, `bf16 and fp32 gave the same probabilities (largest difference ${largest}): autocast did not run`);
  assert.ok(largest < 0.05, `bf16 is too far from fp32 (largest difference ${largest})`);
  assert.equal(emulatedWarning.test(fp32.stderr), false, fp32.stderr);
  assert.equal(emulatedWarning.test(bf16.stderr), emulated, bf16.stderr);
});

test('--precision fp16 on the CPU is an E_INVALID_ARGUMENT error, before any worker starts', async () => {
  const predict = await runCli(['predict', modelFile, dataset.sample(0).source, '--device', 'cpu', '--precision', 'fp16']);
  assert.equal(predict.code, 1);
  assert.match(predict.stderr, /^video-rnn: E_INVALID_ARGUMENT: precision 'fp16' needs a CUDA device/m);
  assert.equal(predict.stdout, '');
  // The precision reaches the load of a resumed run and of fine-tune as well.
  for (const command of [['train', datasetFolder, '--resume', modelFile, '-o', path.join(folder, 'resumed.safetensors')],
    ['fine-tune', modelFile, datasetFolder, '--unfreeze', '1', '-o', path.join(folder, 'tuned.safetensors')]]) {
    const result = await runCli([...command, '--device', 'cpu', '--precision', 'fp16']);
    assert.equal(result.code, 1, `${command[0]}: ${result.stderr}`);
    assert.match(result.stderr, /^video-rnn: E_INVALID_ARGUMENT: precision 'fp16' needs a CUDA device/m);
  }
  const launched = await runCli(['train', datasetFolder, '-o', path.join(folder, 'never.safetensors'), ...tinyModel,
    '--nproc', '2', '--device', 'cpu', '--precision', 'fp16']);
  assert.equal(launched.code, 1);
  assert.deepEqual(errorLines(launched), [launched.stderr.trim()]);
  assert.match(launched.stderr, /^video-rnn: E_INVALID_ARGUMENT: precision 'fp16'/);
  assert.equal(fs.existsSync(path.join(folder, 'never.safetensors')), false);
});

test('a value other than auto, fp32, bf16 or fp16 is a usage error in every command that computes', async () => {
  for (const command of [['predict', modelFile, 'x.mp4'], ['evaluate', modelFile, datasetFolder], ['train', datasetFolder, '-o', 'x'],
    ['fine-tune', modelFile, datasetFolder, '--unfreeze', '1', '-o', 'x'], ['demo'], ['serve', modelFile]]) {
    const result = await runCli([...command, '--precision', 'half']);
    assert.equal(result.code, 2, `${command[0]}: ${result.stderr}`);
    assert.match(result.stderr, /E_USAGE: option '--precision <p>' argument 'half' is invalid/);
  }
});

test('the workers of --nproc get --precision with the rest of the command line', async () => {
  const { workerArguments } = await import('../dist/cli/launch.js');
  assert.deepEqual(workerArguments(['cli.js', 'train', 'data', '--nproc', '2', '--precision', 'bf16', '-o', 'm.safetensors']),
    ['cli.js', 'train', 'data', '--precision', 'bf16', '-o', 'm.safetensors']);
  assert.deepEqual(workerArguments(['cli.js', 'fine-tune', 'm', 'data', '--precision=bf16', '--nproc=2']),
    ['cli.js', 'fine-tune', 'm', 'data', '--precision=bf16']);
});
