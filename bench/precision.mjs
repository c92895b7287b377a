// bf16 against fp32 on the CPU, ours and the reference (torch.autocast('cpu', dtype=torch.bfloat16)):
// top-1 agreement on held-out clips, the relative difference of the embeddings, predict time and the
// first training epoch. A model is trained first (fp32, LSTM + head over a frozen random VGG16) on
// clips of its own, so that its decisions on the held-out clips have margins to keep or lose.
// Frames are 64 px and clips short because CPUs without native bf16 run it through slow generic kernels.
//   node bench/precision.mjs --work FOLDER [--held-out 48] [--frames 3] [--size 64] [--rounds 1] [--blas-core CORE] [--out FILE]
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNN, makeSyntheticDataset } from '../dist/index.js';
import { argument, loadAverage, machine, median, round, startOurs, startReference, writeResults } from './common.mjs';

const work = argument('work', null);
if (!work) throw new Error('--work FOLDER is required');
const heldOutCount = argument('held-out', 48);
const frames = argument('frames', 3);
const size = argument('size', 64);
const rounds = argument('rounds', 1);
const blasCore = argument('blas-core', null);
const batch = 8;
const folder = path.join(work, `precision-${size}`);
const classes = ['left', 'right', 'up', 'down'];

async function prepare() {
  const checkpoint = path.join(folder, 'trained.safetensors');
  const common = { classes, size, minFrames: frames, maxFrames: frames };
  const train = await makeSyntheticDataset(path.join(folder, 'train'), { ...common, perClass: 8, seed: 11 });
  const heldOut = await makeSyntheticDataset(path.join(folder, 'held-out'), { ...common, perClass: Math.ceil(heldOutCount / classes.length), seed: 12 });
  if (!fs.existsSync(checkpoint)) {
    process.removeAllListeners('warning');
    const model = await VideoRNN.create({ classes: train.classes, frameSize: size, hiddenSize: 64, seed: 5 });
    const report = await model.train(train, { epochs: 12, batchSize: 8, learningRate: 3e-3, seed: 5 });
    console.log(`precision: trained on ${train.size} clips, last loss ${report.epochs.at(-1).loss.toFixed(4)}`);
    await model.save(checkpoint);
    model.dispose();
  }
  const listing = Array.from({ length: heldOut.size }, (_, index) => heldOut.sample(index));
  const trainListing = Array.from({ length: train.size }, (_, index) => train.sample(index));
  return { checkpoint, heldOut: listing.slice(0, heldOutCount), train: trainListing };
}

const top1 = (rows) => rows.map((row) => row.indexOf(Math.max(...row)));
const agreement = (a, b) => top1(a).filter((label, index) => label === top1(b)[index]).length / a.length;
function relativeDifference(a, b) {
  let difference = 0;
  let norm = 0;
  for (let index = 0; index < a.length; index += 1) {
    difference += (a[index] - b[index]) ** 2;
    norm += a[index] ** 2;
  }
  return Math.sqrt(difference / norm);
}

const loadBefore = loadAverage();
const { checkpoint, heldOut, train } = await prepare();
const heldOutFiles = heldOut.map((sample) => sample.source);
const labels = heldOut.map((sample) => sample.label);
const env = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};
const sides = {
  'ours fp32': await startOurs({ env }),
  'ours bf16': await startOurs({ env, name: 'ours bf16' }),
  'reference fp32': await startReference({ env }),
  'reference bf16': await startReference({ env }),
};
try {
  const settings = {};
  for (const [name, side] of Object.entries(sides)) {
    settings[name] = await side.request({ op: 'load', checkpoint, precision: name.endsWith('bf16') ? 'bf16' : 'fp32' });
  }
  settings.reference = await sides['reference fp32'].request({ op: 'info' });
  const predictSeconds = Object.fromEntries(Object.keys(sides).map((name) => [name, []]));
  const epochSeconds = Object.fromEntries(Object.keys(sides).map((name) => [name, []]));
  const probabilities = {};
  const trainFiles = train.slice(0, 16);
  const trainRequest = { op: 'train', files: trainFiles.map((sample) => sample.source), labels: trainFiles.map((sample) => sample.label),
    ids: trainFiles.map((sample) => sample.id), batch, learningRate: 1e-3, epochs: 1, source: 'files' };
  const names = Object.keys(sides);
  for (let index = 0; index < rounds; index += 1) {
    const order = names.map((_, position) => names[(position + index) % names.length]);
    for (const name of order) {
      const answer = await sides[name].request({ op: 'predict', files: heldOutFiles, batch });
      predictSeconds[name].push(answer.seconds);
      probabilities[name] = answer.probabilities;
      const trained = await sides[name].request(trainRequest);
      epochSeconds[name].push(trained.epochs[0].seconds);
      console.log(`precision round ${index + 1}/${rounds}: ${name} predict ${answer.seconds.toFixed(2)} s, epoch 1 ${trained.epochs[0].seconds.toFixed(2)} s`);
    }
  }
  // Embeddings of the first 8 held-out clips, fp32 against bf16 (ours).
  const embedFiles = heldOutFiles.slice(0, 8);
  const [fp32, bf16] = [await sides['ours fp32'].request({ op: 'embed', files: embedFiles }), await sides['ours bf16'].request({ op: 'embed', files: embedFiles })];
  const embeddingDifferences = fp32.embeddings.map((rows, index) => relativeDifference(rows, bf16.embeddings[index]));
  const accuracy = (rows) => top1(rows).filter((label, index) => label === labels[index]).length / rows.length;
  const seconds = (name, table) => round(median(table[name]), 3);
  writeResults('precision', {
    benchmark: 'bf16 against fp32 on the CPU',
    workload: { heldOutClips: heldOutFiles.length, framesPerClip: frames, frameSize: size, hiddenSize: 64, batch, trainingClips: trainFiles.length,
      model: `trained in fp32 for 12 epochs on ${train.length} other clips (classes ${classes.join(', ')})` },
    rounds,
    agreement: {
      oursBf16WithOursFp32: round(agreement(probabilities['ours bf16'], probabilities['ours fp32']), 4),
      referenceBf16WithReferenceFp32: round(agreement(probabilities['reference bf16'], probabilities['reference fp32']), 4),
      oursFp32WithReferenceFp32: round(agreement(probabilities['ours fp32'], probabilities['reference fp32']), 4),
      oursBf16WithReferenceBf16: round(agreement(probabilities['ours bf16'], probabilities['reference bf16']), 4),
    },
    accuracy: Object.fromEntries(names.map((name) => [name, round(accuracy(probabilities[name]), 4)])),
    embeddingRelativeDifference: { median: round(median(embeddingDifferences), 5), max: round(Math.max(...embeddingDifferences), 5),
      clips: embedFiles.length, note: '||fc7 bf16 - fc7 fp32|| / ||fc7 fp32|| per clip, ours' },
    predictSeconds: Object.fromEntries(names.map((name) => [name, seconds(name, predictSeconds)])),
    epoch1Seconds: Object.fromEntries(names.map((name) => [name, seconds(name, epochSeconds)])),
    ratios: {
      oursBf16OverFp32Predict: round(median(predictSeconds['ours bf16']) / median(predictSeconds['ours fp32']), 2),
      oursBf16OverFp32Epoch1: round(median(epochSeconds['ours bf16']) / median(epochSeconds['ours fp32']), 2),
      referenceBf16OverOursBf16Predict: round(median(predictSeconds['reference bf16']) / median(predictSeconds['ours bf16']), 2),
      referenceBf16OverOursBf16Epoch1: round(median(epochSeconds['reference bf16']) / median(epochSeconds['ours bf16']), 2),
      note: 'time ratios: above 1 means the first named is slower',
    },
    settings,
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  for (const side of Object.values(sides)) await side.close();
}
