// How the command line fails: usage errors exit 2 with one line, runtime errors exit 1 with one line
// naming the error code, and only --verbose shows a stack.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { temporaryFolder } from './helpers/media.mjs';
import { runCli } from './cli.run.mjs';

const folder = temporaryFolder(after);

/** A class-per-folder dataset whose files are listed but never decoded (the command fails first). */
function listedFolder() {
  const root = path.join(folder, 'listed');
  for (const label of ['left', 'right']) {
    fs.mkdirSync(path.join(root, label), { recursive: true });
    fs.writeFileSync(path.join(root, label, 'clip.mp4'), '');
  }
  return root;
}

const usageCases = [
  ['a missing required option', ['train', folder]],
  ['a missing argument', ['predict']],
  ['a value that is not a number', ['train', folder, '-o', 'm.safetensors', '--epochs', 'ten']],
  ['a zero epoch count', ['train', folder, '-o', 'm.safetensors', '--epochs', '0']],
  ['a validation fraction of 1', ['train', folder, '-o', 'm.safetensors', '--val', '1']],
  ['a report that is not HTML', ['train', folder, '-o', 'm.safetensors', '--report', 'out.png']],
  ['an unknown device', ['evaluate', 'm.safetensors', folder, '--device', 'gpu']],
  ['too many unfrozen layers', ['fine-tune', 'm.safetensors', folder, '--unfreeze', '17', '-o', 'out.safetensors']],
  ['16 unfrozen layers (VGG16 has 15 without fc8)', ['fine-tune', 'm.safetensors', folder, '--unfreeze', '16', '-o', 'out.safetensors']],
  ['16 trainable layers', ['train', folder, '-o', 'm.safetensors', '--trainable-layers', '16']],
  ['an unknown option', ['info', '--colour']],
  ['an unknown command', ['trian']],
];

for (const [what, args] of usageCases) {
  test(`${what} is a usage error: exit 2, one line`, async () => {
    const result = await runCli(args);
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^video-rnn: E_USAGE: \S/);
    assert.equal(result.stdout, '');
  });
}

test('a usage error names the help of the command it is in, subcommand included', async () => {
  for (const [args, help] of [[['train', folder], 'video-rnn train --help'], [['features', 'prune'], 'video-rnn features prune --help'],
    [['features', 'stats', folder, '--colour'], 'video-rnn features stats --help']]) {
    const result = await runCli(args);
    assert.equal(result.code, 2, result.stderr);
    assert.ok(result.stderr.trimEnd().endsWith(`(see: ${help})`), `${args.join(' ')}: ${result.stderr}`);
  }
});

test('no command prints the help on stderr and exits 2', async () => {
  const result = await runCli([]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /Usage: video-rnn/);
  for (const command of ['demo', 'train', 'fine-tune', 'predict', 'evaluate', 'info']) assert.match(result.stderr, new RegExp(`^  ${command} `, 'm'));
});

test('--help exits 0 and lists the options of a command', async () => {
  const result = await runCli(['train', '--help']);
  assert.equal(result.code, 0);
  for (const option of ['--output', '--epochs', '--batch-size', '--lr', '--hidden-size', '--frame-size', '--fps', '--max-frames',
    '--val', '--device', '--weights', '--checkpoint-every', '--report', '--json']) {
    assert.match(result.stdout, new RegExp(`${option}\\b`));
  }
});

test('a file that is not a checkpoint: exit 1, E_CHECKPOINT on one line, no stack', async () => {
  const model = path.join(folder, 'not-a-model.safetensors');
  fs.writeFileSync(model, 'these bytes are no safetensors header');
  const result = await runCli(['predict', model, path.join(folder, 'clip.mp4')]);
  assert.equal(result.code, 1);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0], /^video-rnn: E_CHECKPOINT: .*not-a-model\.safetensors/);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
});

test('a dataset that does not exist: exit 1 with E_DATASET_NOT_FOUND, for train and for --val', async () => {
  const result = await runCli(['train', path.join(folder, 'no-such-folder'), '-o', path.join(folder, 'm.safetensors')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr.trimEnd(), /^video-rnn: E_DATASET_NOT_FOUND: .*no-such-folder/);
  const validation = await runCli(['train', listedFolder(), '--val', path.join(folder, 'no-val-folder'), '-o', path.join(folder, 'm.safetensors')]);
  assert.equal(validation.code, 1);
  assert.match(validation.stderr.trimEnd(), /^video-rnn: E_DATASET_NOT_FOUND: .*no-val-folder/);
});

test('a weights file or model that does not exist: E_WEIGHTS_NOT_FOUND, not a format error', async () => {
  const predicted = await runCli(['predict', path.join(folder, 'no-model.safetensors'), path.join(folder, 'clip.mp4')]);
  assert.equal(predicted.code, 1);
  assert.match(predicted.stderr.trimEnd(), /^video-rnn: E_WEIGHTS_NOT_FOUND: .*no-model\.safetensors/);
  const trained = await runCli(['train', listedFolder(), '--weights', path.join(folder, 'no-vgg16.pth'), '-o', path.join(folder, 'm.safetensors')]);
  assert.equal(trained.code, 1);
  assert.match(trained.stderr.trimEnd(), /^video-rnn: E_WEIGHTS_NOT_FOUND: .*no-vgg16\.pth/);
});

test('a file system failure never surfaces as a raw ENOENT or ENOTDIR: a demo folder under a file is E_IO', async () => {
  const blocker = path.join(folder, 'a-file');
  fs.writeFileSync(blocker, 'not a folder');
  const demo = await runCli(['demo', '--dir', path.join(blocker, 'inside'), '--quiet']);
  assert.equal(demo.code, 1);
  const line = demo.stderr.trimEnd().split('\n').pop();
  assert.match(line, /^video-rnn: E_IO: .*a-file/);
  assert.doesNotMatch(demo.stderr, /video-rnn: E(NOENT|NOTDIR|EXIST|ACCES)\b/);
});

test('a dataset with problems on several lines is still reported on one line', async () => {
  const manifest = path.join(folder, 'list.txt');
  fs.writeFileSync(manifest, 'missing-a.mp4 left\nmissing-b.mp4 right\n');
  const result = await runCli(['train', manifest, '-o', path.join(folder, 'm.safetensors')]);
  assert.equal(result.code, 1);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0], /^video-rnn: E_VIDEO_NOT_FOUND: .*missing-a\.mp4.*missing-b\.mp4/);
});

test('--verbose adds the stack trace', async () => {
  const model = path.join(folder, 'garbage.safetensors');
  fs.writeFileSync(model, 'not a model');
  const result = await runCli(['predict', model, 'clip.mp4', '--verbose']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^video-rnn: E_CHECKPOINT: /);
  assert.match(result.stderr, /\n\s+at .*\.js:\d+/);
});
