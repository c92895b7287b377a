// ManifestDataset: `path label` lines, CSV, and UCF101 split lists with classInd.txt.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ManifestDataset } from '../dist/data/index.js';
import { rejectsWithCode, temporaryFolder } from './helpers/media.mjs';

const folder = temporaryFolder(after);

/** Writes empty stand-ins for videos: the manifest only needs them to exist. */
function touch(root, files) {
  for (const file of files) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), '');
  }
}

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

function listSamples(dataset) {
  return Array.from({ length: dataset.size }, (_, index) => dataset.sample(index));
}

test('path label lines: spaces in paths, comments, blank lines, CRLF; classes sorted by name', async () => {
  const root = path.join(folder, 'lines');
  touch(root, ['clips/walk one.mp4', 'clips/run.mp4', 'clips/b.mp4']);
  const manifest = write(path.join(root, 'list.txt'),
    '# training clips\r\nclips/walk one.mp4   walk\r\n\r\nclips/run.mp4 run\r\n  clips/b.mp4\twalk  \r\n');
  const dataset = await ManifestDataset.open(manifest);
  assert.deepEqual(dataset.classes, ['run', 'walk']);
  assert.deepEqual(listSamples(dataset).map((sample) => [sample.id, sample.label]),
    [['clips/walk one.mp4', 1], ['clips/run.mp4', 0], ['clips/b.mp4', 1]]);
  assert.equal(dataset.sample(0).source, path.join(root, 'clips', 'walk one.mp4'));
  assert.equal(dataset.manifest, manifest);
});

test('a given class list fixes the order; labels outside it are reported with their line numbers', async () => {
  const root = path.join(folder, 'classes');
  touch(root, ['a.mp4', 'b.mp4', 'c.mp4']);
  const manifest = write(path.join(root, 'list.txt'), 'a.mp4 walk\nb.mp4 swim\nc.mp4 run\n');
  const dataset = await ManifestDataset.open(manifest, { classes: ['walk', 'run', 'swim'] });
  assert.deepEqual(listSamples(dataset).map((sample) => sample.label), [0, 2, 1]);
  const error = await rejectsWithCode(ManifestDataset.open(manifest, { classes: ['walk', 'run'] }), 'E_INVALID_ARGUMENT');
  assert.match(error.message, /1 problem:\n  line 2: unknown label "swim"/);
});

test('bad lines and missing files are all reported, with line numbers, in one error', async () => {
  const root = path.join(folder, 'bad');
  touch(root, ['there.mp4']);
  const manifest = write(path.join(root, 'list.txt'), 'there.mp4 walk\nno-label-here.mp4\nmissing.mp4 run\n');
  const error = await rejectsWithCode(ManifestDataset.open(manifest), 'E_INVALID_ARGUMENT');
  assert.match(error.message, /2 problems/);
  assert.match(error.message, /line 2: expected "<path> <label>" but found "no-label-here.mp4"/);
  assert.match(error.message, /line 3: file not found: .*missing\.mp4/);
});

test('missing files alone are E_VIDEO_NOT_FOUND; checkFiles: false skips the check', async () => {
  const root = path.join(folder, 'missing');
  touch(root, ['a.mp4']);
  const manifest = write(path.join(root, 'list.txt'), 'a.mp4 x\ngone.mp4 y\nalso-gone.mp4 x\n');
  const error = await rejectsWithCode(ManifestDataset.open(manifest), 'E_VIDEO_NOT_FOUND');
  assert.match(error.message, /line 2: file not found: .*gone\.mp4\n  line 3: file not found/);
  const unchecked = await ManifestDataset.open(manifest, { checkFiles: false });
  assert.equal(unchecked.size, 3);
});

test('whole-number labels are 0-based class indices', async () => {
  const root = path.join(folder, 'indices');
  touch(root, ['a.mp4', 'b.mp4', 'c.mp4']);
  const manifest = write(path.join(root, 'list.txt'), 'a.mp4 2\nb.mp4 0\nc.mp4 0\n');
  const dataset = await ManifestDataset.open(manifest);
  assert.deepEqual(dataset.classes, ['0', '1', '2']);
  assert.deepEqual(listSamples(dataset).map((sample) => sample.label), [2, 0, 0]);
  const named = await ManifestDataset.open(manifest, { classes: ['cat', 'dog', 'bird'] });
  assert.deepEqual(listSamples(named).map((sample) => sample.label), [2, 0, 0]);
});

test('fractional labels are refused by line, never truncated or made classes: in index lists, with classes, in CSV', async () => {
  const root = path.join(folder, 'fractional');
  touch(root, ['a.mp4', 'b.mp4', 'c.mp4']);
  const lines = await rejectsWithCode(ManifestDataset.open(write(path.join(root, 'list.txt'), 'a.mp4 0\nb.mp4 1.5\nc.mp4 1\n')),
    'E_INVALID_ARGUMENT');
  assert.match(lines.message, /line 2: label "1\.5" is not a whole number/);
  assert.doesNotMatch(lines.message, /line [13]:/);
  const named = await rejectsWithCode(ManifestDataset.open(write(path.join(root, 'named.txt'), 'a.mp4 0\nb.mp4 1.0\n'),
    { classes: ['walk', 'run'] }), 'E_INVALID_ARGUMENT');
  assert.match(named.message, /line 2: label "1\.0" is not a whole number/);
  const csv = await rejectsWithCode(ManifestDataset.open(write(path.join(root, 'list.csv'), 'path,label\na.mp4,0\nb.mp4,.5\n')),
    'E_INVALID_ARGUMENT');
  assert.match(csv.message, /line 3: label "\.5" is not a whole number/);
});

test('CSV with a header (any column order), quoted paths, and a root option', async () => {
  const root = path.join(folder, 'csv-videos');
  touch(root, ['one, two.mp4', 'say "hi".mp4', 'plain.mp4']);
  const manifest = write(path.join(folder, 'csv', 'labels.csv'),
    'label,video,duration\nwave,"one, two.mp4",3.5\ngreet,"say ""hi"".mp4",2\nwave,plain.mp4,1\n');
  const dataset = await ManifestDataset.open(manifest, { root });
  assert.deepEqual(dataset.classes, ['greet', 'wave']);
  assert.deepEqual(listSamples(dataset).map((sample) => [sample.id, sample.label]),
    [['one, two.mp4', 1], ['say "hi".mp4', 0], ['plain.mp4', 1]]);
});

test('CSV without a header, and its bad rows reported by line', async () => {
  const root = path.join(folder, 'csv-plain');
  touch(root, ['a.mp4', 'b.mp4']);
  const good = write(path.join(root, 'good.csv'), 'a.mp4,left\nb.mp4,right\n');
  const dataset = await ManifestDataset.open(good);
  assert.deepEqual(listSamples(dataset).map((sample) => sample.label), [0, 1]);
  const bad = write(path.join(root, 'bad.csv'), 'a.mp4,left\nb.mp4\n,right\n"unterminated.mp4,left\n');
  const error = await rejectsWithCode(ManifestDataset.open(bad), 'E_INVALID_ARGUMENT');
  assert.match(error.message, /line 2: expected "<path>,<label>"/);
  assert.match(error.message, /line 3: expected "<path>,<label>"/);
  assert.match(error.message, /line 4: unterminated quoted field/);
});

function writeUcf101(root) {
  const videos = path.join(root, 'UCF-101');
  touch(videos, [
    'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi', 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi',
    'HandstandPushups/v_HandStandPushups_g08_c01.avi', 'HandstandPushups/v_HandStandPushups_g01_c01.avi',
    'YoYo/v_YoYo_g08_c01.avi', 'YoYo/v_YoYo_g01_c01.avi',
  ]);
  const lists = path.join(root, 'ucfTrainTestlist');
  write(path.join(lists, 'classInd.txt'), '1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n');
  write(path.join(lists, 'trainlist01.txt'), 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n' +
    'HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\nYoYo/v_YoYo_g08_c01.avi 3\r\n');
  write(path.join(lists, 'testlist01.txt'), 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n' +
    'HandStandPushups/v_HandStandPushups_g01_c01.avi\r\nYoYo/v_YoYo_g01_c01.avi\r\n');
  return { videos, lists };
}

test('UCF101 train and test lists: 1-based indices from classInd.txt, or the class folder', async () => {
  const { videos, lists } = writeUcf101(path.join(folder, 'ucf101'));
  const train = await ManifestDataset.open(path.join(lists, 'trainlist01.txt'), { root: videos });
  assert.deepEqual(train.classes, ['ApplyEyeMakeup', 'HandstandPushups', 'YoYo']);
  assert.deepEqual(listSamples(train).map((sample) => sample.label), [0, 1, 2]);
  assert.equal(train.sample(2).id, 'YoYo/v_YoYo_g08_c01.avi');
  // The test list names the class by folder; UCF101 spells one folder with different case.
  const testList = await ManifestDataset.open(path.join(lists, 'testlist01.txt'), {
    root: videos, checkFiles: false,
  });
  assert.deepEqual(listSamples(testList).map((sample) => sample.label), [0, 1, 2]);
});

test('UCF101 lists report labels outside classInd.txt and unknown class folders by line', async () => {
  const { videos, lists } = writeUcf101(path.join(folder, 'ucf101-bad'));
  const badTrain = write(path.join(lists, 'trainlist02.txt'),
    'YoYo/v_YoYo_g08_c01.avi 3\nYoYo/v_YoYo_g08_c01.avi 0\nYoYo/v_YoYo_g08_c01.avi 4\n');
  const error = await rejectsWithCode(ManifestDataset.open(badTrain, { root: videos }), 'E_INVALID_ARGUMENT');
  assert.match(error.message, /line 2: unknown label "0" \(classInd.txt lists 1 to 3\)/);
  assert.match(error.message, /line 3: unknown label "4"/);
  const badTest = write(path.join(lists, 'testlist02.txt'), 'YoYo/v_YoYo_g01_c01.avi\nSkiing/v_Skiing_g01_c01.avi\n');
  const testError = await rejectsWithCode(ManifestDataset.open(badTest, { root: videos }), 'E_INVALID_ARGUMENT');
  assert.match(testError.message, /line 2: unknown class folder "Skiing"/);
  const badIndex = write(path.join(folder, 'ucf101-index', 'classInd.txt'), '1 A\n3 C\n');
  const indexError = await rejectsWithCode(ManifestDataset.open(badTrain, { root: videos, classIndex: badIndex }),
    'E_INVALID_ARGUMENT');
  assert.match(indexError.message, /classInd\.txt: 1 problem:\n  line 2: expected index 2 but found 3/);
});

test('a missing manifest, an empty one, and bad options have codes', async () => {
  await rejectsWithCode(ManifestDataset.open(path.join(folder, 'none.txt')), 'E_DATASET_NOT_FOUND');
  const empty = write(path.join(folder, 'empty', 'list.txt'), '# nothing yet\n');
  await rejectsWithCode(ManifestDataset.open(empty), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(ManifestDataset.open(empty, { format: 'xml' }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(ManifestDataset.open(empty, { classes: ['a', 'a'] }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(ManifestDataset.open(empty, { rooot: folder }), 'E_INVALID_ARGUMENT');
  await rejectsWithCode(ManifestDataset.open(empty, { root: path.join(folder, 'no-root') }), 'E_DATASET_NOT_FOUND');
});
