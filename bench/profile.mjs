// Where a predict's time goes: decoding, the transfer into native code, normalisation, the CNN
// (convolutions, fc6/fc7), LSTM + head, and JavaScript; the CNN's achieved GFLOP/s against the
// machine's peak; the instruction set oneDNN runs. Ours only (the reference has no such breakdown).
//   node bench/profile.mjs --work FOLDER [--rounds 2] [--batch 8] [--blas-core CORE] [--precision fp32|bf16]
//        [--verbose-frames 2] (frames of the forward oneDNN's verbose mode times) [--out FILE]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argument, benchFolder, loadAverage, machine, median, readFixture, round, startOurs, writeResults } from './common.mjs';

const rounds = argument('rounds', 2);
const batch = argument('batch', 8);
const blasCore = argument('blas-core', null);
const precision = argument('precision', 'fp32');
const verboseFrames = argument('verbose-frames', 2);
const fixture = readFixture();
const files = fixture.predict.files;
const size = fixture.frameSize;

/** Multiply-adds count two FLOPs. VGG16 configuration D (torchvision) at size x size input. */
function vgg16Flops(side) {
  const config = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
  let channels = 3;
  let resolution = side;
  let convolutions = 0;
  for (const width of config) {
    if (width === 0) {
      resolution = Math.floor(resolution / 2);
    } else {
      convolutions += 2 * 9 * channels * width * resolution * resolution;
      channels = width;
    }
  }
  // Adaptive average pooling hands fc6 512 x 7 x 7 values; under 7 x 7 the library folds the pool
  // into fc6 (pooledFc6, on by default), which then reads the 512 x r x r values themselves.
  const folded = tuningSays('pooledFc6') !== '0' && resolution * resolution < 49;
  const classifier = 2 * (512 * (folded ? resolution * resolution : 7 * 7) * 4096 + 4096 * 4096);
  return { convolutions, classifier };
}

/** A VIDEO_RNN_TUNING setting as this process's environment gives it to the worker, or undefined. */
function tuningSays(name) {
  return new RegExp(`(?:^|,)\\s*${name}=(\\w+)`).exec(process.env.VIDEO_RNN_TUNING ?? '')?.[1];
}

/** FP32 FLOPs per cycle per core from the vector units the flags announce (two FMA pipes assumed). */
function peak() {
  const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  const megahertz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(text)?.[1] ?? NaN);
  const lanes = flags.has('avx512f') ? 16 : flags.has('avx2') && flags.has('fma') ? 8 : 4;
  const perCycle = lanes * 2 /* FMA */ * 2 /* pipes */;
  const family = /^cpu family\s*:\s*(\d+)/m.exec(text)?.[1];
  const model = /^model\s*:\s*(\d+)/m.exec(text)?.[1];
  return { megahertz, fp32FlopsPerCycle: perCycle, cores: os.availableParallelism(),
    gflops: round((megahertz / 1000) * perCycle * os.availableParallelism(), 1), cpuFamily: family, cpuModel: model,
    vectorFlags: [...flags].filter((flag) => /^(avx|fma|amx)/.test(flag)).sort() };
}

/** What oneDNN reports about itself when its verbose mode is on: its ISA and the kernels a forward runs. */
function oneDnnReport() {
  const script = path.join(benchFolder, 'onednn-verbose.mjs');
  const output = execFileSync(process.execPath, [script], { encoding: 'utf8', maxBuffer: 64 << 20,
    env: { ...process.env, DNNL_VERBOSE: '1', ONEDNN_VERBOSE: '1', BENCH_PRECISION: precision, BENCH_FRAMES: String(verboseFrames) } });
  const all = output.split('\n');
  const lines = all.filter((line) => /^(onednn|dnnl)_verbose,/.test(line));
  const steady = all.slice(all.indexOf('video-rnn: steady forward') + 1).filter((line) => line.includes(',exec,'));
  const isa = lines.find((line) => line.includes(',isa:'))?.split(',isa:')[1]?.split(',')[0] ?? null;
  const version = lines.find((line) => /oneDNN v|DNNL v/.test(line))?.split(',info,')[1]?.split(',')[0] ?? null;
  const kernels = {};
  const milliseconds = {};
  for (const line of steady) {
    const fields = line.split(',');
    const [, , , primitive, implementation] = fields;
    const key = `${primitive} ${implementation}`;
    kernels[key] = (kernels[key] ?? 0) + 1;
    // The last field of an exec line is its time in milliseconds.
    milliseconds[key] = round((milliseconds[key] ?? 0) + Number(fields.at(-1)), 3);
  }
  return { version, isa, frames: verboseFrames, kernelsPerForward: kernels, millisecondsPerForward: milliseconds };
}

const loadBefore = loadAverage();
const env = blasCore ? { OPENBLAS_CORETYPE: blasCore } : {};
const ours = await startOurs({ env });
try {
  const settings = await ours.request({ op: 'load', checkpoint: fixture.checkpoint, precision });
  await ours.request({ op: 'predict', files: files.slice(0, 2), batch });
  const runs = [];
  const decodes = [];
  for (let index = 0; index < rounds; index += 1) {
    decodes.push(await ours.request({ op: 'decodeOnly', files, batch }));
    runs.push(await ours.request({ op: 'profile', files, batch }));
    console.log(`profile round ${index + 1}/${rounds}: predict ${(runs.at(-1).wallMs / 1000).toFixed(2)} s, decoding alone ${decodes.at(-1).seconds.toFixed(2)} s`);
  }
  const flops = vgg16Flops(size);
  const machinePeak = peak();
  const frames = runs[0].framesEmbedded;
  const mid = (pick) => median(runs.map(pick));
  const wall = mid((run) => run.wallMs);
  const phase = (name) => mid((run) => run.phaseMs[name]);
  const calls = mid((run) => run.calls.reduce((sum, call) => sum + call.totalMs, 0));
  const synchronous = mid((run) => run.calls.reduce((sum, call) => sum + call.synchronousMs, 0));
  const firstGap = mid((run) => run.gapsMs[0]);
  const laterGaps = mid((run) => run.gapsMs.slice(1).reduce((sum, gap) => sum + gap, 0) + run.tailMs);
  const named = ['normalize', 'convolutions', 'classifier', 'sequence'].reduce((sum, name) => sum + phase(name), 0);
  const rows = [
    { part: 'decode, first batch (nothing to overlap with yet)', ms: firstGap },
    { part: 'decode not ready and JavaScript between native calls', ms: laterGaps },
    { part: 'transfer into native (argument conversion on the main thread, zero-copy)', ms: synchronous },
    { part: 'queueing and result conversion (native call as seen from JavaScript, less the engine)', ms: calls - phase('call') - synchronous },
    { part: 'normalisation (uint8 NHWC to float, ImageNet statistics)', ms: phase('normalize') },
    { part: 'CNN convolutions (VGG16 features + pooling)', ms: phase('convolutions'), gflop: (flops.convolutions * frames) / 1e9 },
    { part: 'CNN fc6 + fc7', ms: phase('classifier'), gflop: (flops.classifier * frames) / 1e9 },
    { part: 'LSTM + head', ms: phase('sequence') },
    { part: 'other native work (packing, concatenation, softmax)', ms: phase('call') - named },
  ].map((row) => ({ ...row, ms: round(row.ms, 1), percent: round((100 * row.ms) / wall, 1),
    ...(row.gflop ? { gflopPerSecond: round(row.gflop / (row.ms / 1000), 1), percentOfPeak: round((100 * row.gflop / (row.ms / 1000)) / machinePeak.gflops, 1) } : {}) }));
  const cnnMs = phase('convolutions') + phase('classifier');
  writeResults('profile', {
    benchmark: 'where a predict spends its time',
    workload: { clips: files.length, frames, frameSize: size, hiddenSize: fixture.hiddenSize, batch, precision },
    rounds,
    wallMs: round(wall, 1),
    rows,
    cnn: { gflopPerFrame: round((flops.convolutions + flops.classifier) / 1e9, 3), gflopPerSecond: round(((flops.convolutions + flops.classifier) * frames / 1e9) / (cnnMs / 1000), 1),
      percentOfPeak: round((100 * ((flops.convolutions + flops.classifier) * frames / 1e9) / (cnnMs / 1000)) / machinePeak.gflops, 1), note: 'FLOPs count a multiply-add as two' },
    cpuSeconds: { ffmpegAndFfprobe: round(mid((run) => run.childrenCpuSeconds), 2), mainThread: round(mid((run) => run.mainThreadCpuSeconds), 2) },
    decodeOnly: { seconds: round(median(decodes.map((decode) => decode.seconds)), 3), childrenCpuSeconds: round(median(decodes.map((decode) => decode.childrenCpuSeconds)), 2) },
    peak: machinePeak,
    oneDnn: oneDnnReport(),
    settings,
    runs,
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  await ours.close();
}
