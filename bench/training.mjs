// (4) training epoch time: ours epoch 1 (decode + VGG + LSTM, embeddings cached) and epoch 2 (from the
// cache) vs the reference, which decodes and runs VGG on every epoch; the losses must match.
// (5) decode/compute overlap: our epoch 1 vs decoding alone and vs training on decoded clips alone.
// (6) the event loop's delay while ours trains from files.
// Every run of ours starts with an empty probe cache, as a new process would. Decoding's CPU time
// (ffmpeg and ffprobe, counted through the helper process) is recorded, and epoch 1 is measured a
// second time with statically linked ffmpeg and ffprobe (bench/static-ffmpeg.mjs), which start in
// milliseconds where a distribution's dynamically linked ones take about 0.15 s of CPU each.
// Every run starts from the checkpoint; batches are the same on both sides (fixed order, no shuffle).
// The first --clips clips of the fixed order (default 16, half the set): the reference recomputes VGG on
// every epoch, and its two epochs per round dominate the whole benchmark's running time.
//   node bench/training.mjs --work FOLDER [--rounds 2] [--clips 16] [--epochs 2] [--batch 8] [--threads N] [--blas-core CORE]
//     [--no-static] [--out FILE]
// --threads: our intra-op threads (default: all cores), to show the overlap with a core left to decoding.
import os from 'node:os';
import { argument, loadAverage, machine, median, readFixture, round, startOurs, startReference, writeResults } from './common.mjs';
import { staticFfmpeg } from './static-ffmpeg.mjs';

const rounds = argument('rounds', 2);
const epochs = argument('epochs', 2);
const batch = argument('batch', 8);
const learningRate = 1e-3;
const fixture = readFixture();
const count = argument('clips', 16);
const [files, labels, ids] = ['files', 'labels', 'ids'].map((field) => fixture.train[field].slice(0, count));

const loadBefore = loadAverage();
const threads = argument('threads', 0);
const blasCore = argument('blas-core', null);
const blasEnv = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};
const statics = process.argv.includes('--no-static') ? { binaries: null, why: '--no-static' } : staticFfmpeg(argument('work', ''));
const cores = os.availableParallelism();
const cnnThreads = threads || cores;
const ours = await startOurs({ env: blasEnv });
const reference = await startReference({ env: blasEnv });
try {
  await ours.request({ op: 'load', checkpoint: fixture.checkpoint, ...(threads ? { threads } : {}) });
  await reference.request({ op: 'load', checkpoint: fixture.checkpoint });
  const referenceInfo = await reference.request({ op: 'info' });
  const request = { op: 'train', files, labels, ids, batch, learningRate };
  const runs = { files: [], clips: [], reference: [], staticFiles: [], staticDecode: [] };
  const steps = [
    async () => runs.files.push(await ours.request({ ...request, epochs, source: 'files' })),
    async () => runs.clips.push(await ours.request({ ...request, epochs: 1, source: 'clips' })),
    async () => runs.reference.push(await reference.request({ ...request, epochs })),
  ];
  const { binaries } = statics;
  if (binaries) {
    steps.push(async () => {
      runs.staticFiles.push(await ours.request({ ...request, epochs: 1, source: 'files', binaries }));
      runs.staticDecode.push(await ours.request({ ...request, source: 'clips', decodeOnly: true, binaries }));
    });
  }
  for (let index = 0; index < rounds; index += 1) {
    for (let step = 0; step < steps.length; step += 1) await steps[(step + index) % steps.length]();
    const [mine, alone, theirs] = [runs.files.at(-1), runs.clips.at(-1), runs.reference.at(-1)];
    console.log(`training round ${index + 1}/${rounds}: ours epochs ${mine.epochs.map((e) => e.seconds.toFixed(2)).join(' / ')} s, ` +
      `decode only ${alone.decodeSeconds.toFixed(2)} s, compute only ${alone.epochs[0].seconds.toFixed(2)} s, ` +
      `reference epochs ${theirs.epochs.map((e) => e.seconds.toFixed(2)).join(' / ')} s, decoding CPU ${alone.decodeCpuSeconds.toFixed(2)} s` +
      (binaries ? `; static ffmpeg: epoch 1 ${runs.staticFiles.at(-1).epochs[0].seconds.toFixed(2)} s, decode only ` +
        `${runs.staticDecode.at(-1).decodeSeconds.toFixed(2)} s, decoding CPU ${runs.staticDecode.at(-1).decodeCpuSeconds.toFixed(2)} s` : ''));
  }

  const epochSeconds = (run, at) => run.epochs[at].seconds;
  const referenceEpoch = (run) => median(run.epochs.map((epoch) => epoch.seconds));
  const perRound = (value) => round(median(runs.files.map((_, at) => value(at))), 3);
  const lossesOurs = runs.files.at(-1).epochs.map((epoch) => epoch.loss);
  const lossesReference = runs.reference.at(-1).epochs.map((epoch) => epoch.loss);
  const lossDifference = Math.max(...lossesOurs.map((loss, at) => Math.abs(loss - lossesReference[at])));
  const worstOf = (list) => Object.fromEntries(['p50', 'p99', 'max'].map((field) =>
    [field, round(Math.max(...list.map((run) => run.eventLoop[field])), 2)]));
  // Per round: epoch 1 from files over the larger of decoding alone and training on decoded clips
  // (the same round's compute alone for both pairs of binaries: they do not change the compute).
  const overlapRounds = (epochRuns, decodeRuns) => epochRuns.map((run, at) => epochSeconds(run, 0) /
    Math.max(decodeRuns[at].decodeSeconds, epochSeconds(runs.clips[at], 0)));
  const overlap = overlapRounds(runs.files, runs.clips);
  const staticOverlap = binaries ? overlapRounds(runs.staticFiles, runs.staticDecode) : [];

  writeResults('training', {
    benchmark: 'training epochs, decode/compute overlap, event loop while training',
    workload: { clips: files.length, frameSize: fixture.frameSize, hiddenSize: fixture.hiddenSize,
      batch, epochs, optimizer: 'adam', learningRate, backbone: 'frozen', shuffle: 'fixed order, same on both sides' },
    rounds,
    ours: {
      epoch1Seconds: round(median(runs.files.map((run) => epochSeconds(run, 0))), 3),
      epoch2Seconds: epochs > 1 ? round(median(runs.files.map((run) => epochSeconds(run, 1))), 3) : null,
      roundsEpochSeconds: runs.files.map((run) => run.epochs.map((epoch) => round(epoch.seconds, 3))),
      framesEmbeddedPerRun: runs.files[0].framesEmbedded,  // every frame once: epoch 2 comes from the cache
      cacheHitsPerRun: runs.files[0].cacheHits,
      eventLoopMs: { ...worstOf(runs.files), note: 'largest over the rounds of each round\'s percentile' },
    },
    reference: {
      epochSeconds: round(median(runs.reference.map(referenceEpoch)), 3),
      roundsEpochSeconds: runs.reference.map((run) => run.epochs.map((epoch) => round(epoch.seconds, 3))),
      roundsDecodeSeconds: runs.reference.map((run) => run.epochs.map((epoch) => round(epoch.decodeSeconds, 3))),
    },
    ratios: {
      referenceEpochOverOursEpoch1: perRound((at) => referenceEpoch(runs.reference[at]) / epochSeconds(runs.files[at], 0)),
      referenceEpochOverOursEpoch2: epochs > 1 ? perRound((at) => referenceEpoch(runs.reference[at]) / epochSeconds(runs.files[at], 1)) : null,
    },
    losses: { ours: lossesOurs, reference: lossesReference, maxAbsoluteDifference: lossDifference },
    overlap: {
      epoch1Seconds: round(median(runs.files.map((run) => epochSeconds(run, 0))), 3),
      decodeOnlySeconds: round(median(runs.clips.map((run) => run.decodeSeconds)), 3),
      computeOnlySeconds: round(median(runs.clips.map((run) => epochSeconds(run, 0))), 3),
      epochOverMaxOfParts: round(median(overlap), 3),
      roundsEpochOverMaxOfParts: overlap.map((value) => round(value, 3)),
      // ffmpeg, ffprobe and the helper, in core-seconds. The CNN's threads and decoding share the
      // cores, so epoch 1 cannot beat (compute x CNN threads + decodeCpu) / cores, nor the compute:
      // with the CNN on every core, compute + decodeCpu / cores.
      decodeCpuSeconds: round(median(runs.clips.map((run) => run.decodeCpuSeconds)), 2),
      cores,
      cnnThreads,
      boundOverCompute: perRound((at) => {
        const compute = epochSeconds(runs.clips[at], 0);
        return Math.max(compute, (compute * cnnThreads + runs.clips[at].decodeCpuSeconds) / cores) / compute;
      }),
      staticFfmpeg: binaries ? {
        versions: binaries.versions,
        epoch1Seconds: round(median(runs.staticFiles.map((run) => epochSeconds(run, 0))), 3),
        decodeOnlySeconds: round(median(runs.staticDecode.map((run) => run.decodeSeconds)), 3),
        decodeCpuSeconds: round(median(runs.staticDecode.map((run) => run.decodeCpuSeconds)), 2),
        epochOverMaxOfParts: round(median(staticOverlap), 3),
        roundsEpochOverMaxOfParts: staticOverlap.map((value) => round(value, 3)),
        eventLoopMs: worstOf(runs.staticFiles),
      } : { skipped: statics.why },
    },
    settings: { ours: { threads: threads || 'all cores (video-rnn default)', OPENBLAS_NUM_THREADS: '1 (set by video-rnn)', OPENBLAS_CORETYPE: blasCore }, reference: referenceInfo },
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  await ours.close();
  await reference.close();
}
