// (1) predict throughput, clips/s from video files, ours vs the Python reference, rounds alternating;
// (6) the event loop's delay while ours predicts; (7) the peak resident memory of a predict.
//   node bench/predict.mjs --work FOLDER [--rounds 3] [--batch 8] [--blas-core CORE] [--device cpu] [--precision fp32]
//        [--channels-last] (reference side only; ours is channels-last already) [--out FILE]
// --blas-core CORE: both sides run OpenBLAS with OPENBLAS_CORETYPE=CORE (the kernels video-rnn names
// by itself, or what the machine's environment already sets), so that the ratio never comes from the
// reference running other kernels; a third side, the reference with OpenBLAS's own detection, shows
// what a Python user gets without setting anything.
import { argument, flag, loadAverage, machine, maxRowDifference, median, readFixture, round, startOurs, startReference,
  writeResults } from './common.mjs';

const rounds = argument('rounds', 3);
const batch = argument('batch', 8);
const device = argument('device', 'cpu');
const precision = argument('precision', 'fp32');
const blasCore = argument('blas-core', null);
const fixture = readFixture();
const files = fixture.predict.files;

const loadBefore = loadAverage();
const blasEnv = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};
const sides = [{ name: 'ours', side: await startOurs({ env: blasEnv }) }, { name: 'reference', side: await startReference({ env: blasEnv }) }];
if (blasCore) {
  sides.push({ name: 'reference, OpenBLAS default kernels', side: await startReference({ env: { OPENBLAS_CORETYPE: undefined } }) });
}
const isReference = (name) => name.startsWith('reference');
const setup = {};
try {
  for (const { name, side } of sides) {
    setup[name] = await side.request({ op: 'load', checkpoint: fixture.checkpoint, device, precision,
      channelsLast: flag('channels-last') });
  }
  const referenceInfo = await sides[1].side.request({ op: 'info' });
  // One clip each first: oneDNN builds its kernels for new shapes, fluent-ffmpeg queries its binary.
  for (const { side } of sides) await side.request({ op: 'predict', files: files.slice(0, 2), batch });

  const seconds = Object.fromEntries(sides.map(({ name }) => [name, []]));
  const answers = {};
  for (let index = 0; index < rounds; index += 1) {
    // Each round runs every side once, starting from a different one, so that drift in the machine's
    // load falls on all of them alike.
    const order = sides.map((_, position) => sides[(position + index) % sides.length]);
    for (const { name, side } of order) {
      const answer = await side.request({ op: 'predict', files, batch });
      seconds[name].push(answer.seconds);
      answers[name] = [...(answers[name] ?? []), answer];
    }
    console.log(`predict round ${index + 1}/${rounds}: ` +
      sides.map(({ name }) => `${name} ${seconds[name].at(-1).toFixed(2)} s`).join(', '));
  }

  const reference = seconds.reference;
  const bySide = {};
  for (const { name } of sides) {
    const own = seconds[name];
    const last = answers[name].at(-1);
    bySide[name] = {
      clipsPerSecond: round(files.length / median(own), 3),
      medianSeconds: round(median(own), 3),
      roundsSeconds: own.map((value) => round(value, 3)),
      // Ratios are taken per round (same machine state), then their median.
      speedupOverReference: name === 'reference' ? 1 : round(median(own.map((value, at) => reference[at] / value)), 3),
      maxProbabilityDifferenceFromReference: name === 'reference' ? 0
        : round(maxRowDifference(last.probabilities, answers.reference.at(-1).probabilities), 8),
    };
    if (isReference(name)) {
      bySide[name].decodeSeconds = answers[name].map((answer) => round(answer.decodeSeconds, 3));
    } else {
      const worst = (field) => round(Math.max(...answers[name].map((answer) => answer.eventLoop[field])), 2);
      bySide[name].eventLoopMs = { p50: worst('p50'), p99: worst('p99'), max: worst('max'),
        note: 'largest over the rounds of each round\'s percentile' };
      bySide[name].peakRssMB = round(Math.max(...answers[name].map((answer) => answer.peakRssMB)), 1);
      bySide[name].rssBeforePredictMB = round(answers[name][0].rssBeforeMB, 1);
    }
  }

  writeResults('predict', {
    benchmark: 'predict throughput from video files',
    blas: { OPENBLAS_CORETYPE: blasCore, chosenBy: argument('blas-source', blasCore ? 'the command line' : null),
      note: 'both ours and the reference run with this OPENBLAS_CORETYPE' },
    workload: { clips: files.length, frames: fixture.predict.frames, frameSize: fixture.frameSize,
      hiddenSize: fixture.hiddenSize, batch, sampling: 'every frame (8 fps files)', device, precision },
    rounds,
    sides: bySide,
    settings: { ours: setup.ours, reference: { ...referenceInfo, channelsLast: flag('channels-last') } },
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  for (const { side } of sides) await side.close();
}
