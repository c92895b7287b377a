// train, predict, evaluate and fine-tune from the command line, on a tiny synthetic folder: each
// command reads what the one before it wrote.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, readSafetensors } from '../dist/index.js';
import { temporaryFolder } from './helpers/media.mjs';
import { errorLines, parseJson, runCli, tinyDataset, tinyModel } from './cli.run.mjs';

const folder = temporaryFolder(after);
const datasetFolder = path.join(folder, 'data');
const modelFile = path.join(folder, 'model.safetensors');
const reportFile = path.join(folder, 'report.html');
let dataset;
let trained;

before(async () => {
  dataset = await tinyDataset(datasetFolder);
  const result = await runCli(['train', datasetFolder, '-o', modelFile, ...tinyModel, '--epochs', '2', '--val', '0.25',
    '--report', reportFile, '--json']);
  assert.equal(result.code, 0, result.stderr);
  trained = parseJson(result);
});

test('train writes a checkpoint with the dataset classes and the sizes asked for', async () => {
  assert.equal(trained.model, modelFile);
  assert.deepEqual(trained.classes, ['left', 'right']);
  assert.equal(trained.training.epochs.length, 2);
  assert.equal(trained.modelBytes, fs.statSync(modelFile).size);
  const { metadata, tensors } = await readSafetensors(modelFile);
  assert.equal(metadata.format, 'video-rnn');
  const config = JSON.parse(metadata.config);
  assert.deepEqual(config.classes, ['left', 'right']);
  assert.equal(config.hiddenSize, 16);
  assert.equal(config.frameSize, 32);
  assert.deepEqual(tensors.get('lstm.weight_hh_l0').shape, [64, 16]);
});

test('--val 0.25 validates every epoch on a held-out quarter', () => {
  for (const epoch of trained.training.epochs) {
    assert.ok(epoch.validation, `epoch ${epoch.epoch} has a validation result`);
    assert.ok(epoch.validation.accuracy >= 0 && epoch.validation.accuracy <= 1);
  }
  assert.equal(trained.training.validation.count, 2);
});

test('--report writes one self-contained HTML page with the curves and the confusion matrix', () => {
  assert.equal(trained.report, reportFile);
  const html = fs.readFileSync(reportFile, 'utf8');
  assert.match(html, /^<!DOCTYPE html>/);
  const charts = html.match(/<svg[\s>]/g) ?? [];
  assert.equal(charts.length, 3, 'loss, accuracy and confusion matrix');
  assert.match(html, /<polyline [^>]*points="[\d.,]+ [\d.,]+"/, 'a curve through both epochs');
  assert.match(html, /aria-label="confusion matrix"/);
  assert.match(html, /<title>left -&gt; left: \d+<\/title>/);
  assert.doesNotMatch(html, /<script|<link|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'nothing to fetch');
});

test('predict --json reads the model back and classifies each video', async () => {
  const videos = [dataset.sample(0).source, dataset.sample(dataset.size - 1).source];
  const result = await runCli(['predict', modelFile, ...videos, '--json', '--top', '2']);
  assert.equal(result.code, 0, result.stderr);
  const output = parseJson(result);
  assert.equal(output.predictions.length, 2);
  output.predictions.forEach((prediction, index) => {
    assert.equal(prediction.video, videos[index]);
    assert.ok(['left', 'right'].includes(prediction.label));
    assert.equal(prediction.topK.length, 2);
    const total = prediction.probabilities.left + prediction.probabilities.right;
    assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
  });
  // The same model in this process gives the same probabilities: the CLI used the saved weights.
  const model = await VideoRNN.load(modelFile);
  try {
    const [direct] = await model.predict(videos[0]);
    assert.ok(Math.abs(direct.probabilities.left - output.predictions[0].probabilities.left) < 1e-5);
  } finally {
    model.dispose();
  }
});

test('predict prints one line per video', async () => {
  const video = dataset.sample(1).source;
  const result = await runCli(['predict', modelFile, video]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`^${video.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: (left|right) [01]\\.\\d{3}`));
});

test('evaluate --json counts every clip into the confusion matrix', async () => {
  const result = await runCli(['evaluate', modelFile, datasetFolder, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const report = parseJson(result);
  assert.equal(report.count, 8);
  assert.deepEqual(report.classes, ['left', 'right']);
  assert.equal(report.confusion.flat().reduce((sum, value) => sum + value, 0), 8);
  const correct = report.confusion[0][0] + report.confusion[1][1];
  assert.equal(report.accuracy, correct / 8);
  assert.equal(report.perClass.left.count, 4);
});

test('evaluate reads a manifest, and a folder with only some of the classes', async () => {
  const manifest = path.join(folder, 'right-only.txt');
  const rights = Array.from({ length: dataset.size }, (_, index) => dataset.sample(index)).filter((sample) => sample.label === 1);
  fs.writeFileSync(manifest, rights.map((sample) => `${path.relative(folder, sample.source)} right`).join('\n') + '\n');
  const fromManifest = parseJson(await runCli(['evaluate', modelFile, manifest, '--json']));
  assert.equal(fromManifest.count, 4);
  assert.equal(fromManifest.perClass.right.count, 4);
  assert.equal(fromManifest.perClass.left.count, 0);

  const partial = path.join(folder, 'partial');
  fs.cpSync(path.join(datasetFolder, 'right'), path.join(partial, 'right'), { recursive: true });
  const fromFolder = parseJson(await runCli(['evaluate', modelFile, partial, '--json']));
  assert.deepEqual(fromFolder.confusion, fromManifest.confusion);
});

test('evaluate prints accuracy, per-class accuracy and the confusion matrix', async () => {
  const result = await runCli(['evaluate', modelFile, datasetFolder]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^accuracy\s+[01]\.\d{3}\s+\(\d of 8 clips\)$/m);
  assert.match(result.stdout, /^mean class accuracy\s+[01]\.\d{3}$/m);
  assert.match(result.stdout, /^\s+left\s+[01]\.\d{3}\s+4$/m);
  assert.match(result.stdout, /^\s+true \\ predicted\s+left\s+right$/m);
});

test('fine-tune loads the model, trains with unfrozen layers and saves a new file', async () => {
  const tuned = path.join(folder, 'tuned.safetensors');
  const result = await runCli(['fine-tune', modelFile, datasetFolder, '--unfreeze', '1', '-o', tuned, '--epochs', '1',
    '--batch-size', '4', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const output = parseJson(result);
  assert.equal(output.command, 'fine-tune');
  assert.equal(output.training.epochs.length, 1);
  const before = (await readSafetensors(modelFile)).tensors;
  const afterTuning = (await readSafetensors(tuned)).tensors;
  const changed = (name) => before.get(name).data.some((value, index) => value !== afterTuning.get(name).data[index]);
  assert.ok(changed('embedding.classifier.3.weight'), 'fc7 was trained');
  assert.ok(!changed('embedding.classifier.0.weight'), 'fc6 stayed frozen');
});

test('progress goes to stderr as plain lines when stderr is not a terminal', async () => {
  const second = path.join(folder, 'second.safetensors');
  const result = await runCli(['train', datasetFolder, '-o', second, ...tinyModel, '--epochs', '2']);
  assert.equal(result.code, 0, result.stderr);
  const lines = errorLines(result);
  // One summary line per epoch; a slow batch may add a periodic 'batch i/n' line, which is not counted.
  assert.deepEqual(lines.map((line) => line.match(/^epoch (\d)\/2  loss /)?.[1]).filter(Boolean), ['1', '2'], result.stderr);
  assert.ok(lines.every((line) => !/^epoch /.test(line) || /^epoch \d\/2  (loss|batch) /.test(line)), result.stderr);
  assert.doesNotMatch(result.stderr, /\u001b\[/, 'no terminal control codes');
  assert.match(result.stdout, /^trained 2 epochs in /);
  assert.match(result.stdout, new RegExp(`^model saved to ${second.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(\\d`, 'm'));
  fs.rmSync(second);
});
