// (2) VGG16 forward (fc7), frames/s at 112 and 224 px, ours vs torchvision with the same threads:
// ours channels-last (the default) and NCHW through the native embed call; torchvision NCHW,
// channels_last and oneDNN tensors; bf16 autocast on both sides as an extra. Uint8 frames in,
// normalisation included on both sides. Rounds alternate the variants' order.
//   node bench/backbone.mjs --work FOLDER [--rounds 3] [--blas-core CORE] [--no-bf16] [--device cpu] [--out FILE]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argument, flag, loadAverage, machine, maxDifference, median, readFixture, round, startOurs, startReference,
  writeResults } from './common.mjs';

const rounds = argument('rounds', 3);
const device = argument('device', 'cpu');
const blasCore = argument('blas-core', null);
const fixture = readFixture();
// 16 frames at 112 px and 8 at 224 px: about the same work, and within one native chunk (32 frames).
const sizes = [{ size: 112, count: argument('frames-112', 16) }, { size: 224, count: argument('frames-224', 8) }];
const low = device === 'cpu' ? 'bf16' : 'fp16';
const lowPrecision = 'different precision: not in the comparison';

const loadBefore = loadAverage();
const ours = await startOurs();
const reference = await startReference();
// The reference with the OpenBLAS kernels video-rnn names by itself: how much of the ratio is that choice.
const tuned = blasCore ? await startReference({ env: { OPENBLAS_CORETYPE: blasCore } }) : null;
const variants = [
  { name: 'ours channels_last', side: ours, request: { channelsLast: true } },
  { name: 'ours nchw', side: ours, request: { channelsLast: false } },
  { name: 'torchvision nchw', side: reference, request: { variant: 'nchw' } },
  { name: 'torchvision channels_last', side: reference, request: { variant: 'channels_last' } },
];
if (device === 'cpu') variants.push({ name: 'torchvision onednn', side: reference, request: { variant: 'onednn' } });
if (tuned) {
  variants.push({ name: `torchvision channels_last+OPENBLAS_CORETYPE=${blasCore}`, side: tuned,
    request: { variant: 'channels_last' }, extra: "the reference given video-rnn's OpenBLAS kernel choice: not in the target" });
}
if (!flag('no-bf16')) {
  variants.push({ name: `ours channels_last ${low}`, side: ours, request: { channelsLast: true, precision: low }, extra: lowPrecision });
  variants.push({ name: `torchvision channels_last ${low}`, side: reference, request: { variant: 'channels_last', precision: low }, extra: lowPrecision });
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-backbone-'));
try {
  for (const side of [ours, reference, tuned].filter(Boolean)) {
    await side.request({ op: 'load', checkpoint: fixture.checkpoint, device, precision: 'fp32' });
  }
  const referenceInfo = await reference.request({ op: 'info' });
  const results = {};
  for (const { size, count } of sizes) {
    const frames = fixture.frames[size];
    const request = (variant, extra = {}) => variant.side.request({ op: 'backbone', frames, count, size, ...variant.request, ...extra });
    const seconds = Object.fromEntries(variants.map((variant) => [variant.name, []]));
    // First calls build oneDNN's kernels and, for ours, the native models; they also give the outputs to compare.
    const outputs = {};
    for (const variant of variants) {
      outputs[variant.name] = path.join(scratch, `${variants.indexOf(variant)}-${size}.f32`);
      const answer = await request(variant, { output: outputs[variant.name] });
      if (answer.unavailable) variant.unavailable = answer.unavailable;
    }
    const available = variants.filter((variant) => !variant.unavailable);
    for (let index = 0; index < rounds; index += 1) {
      const order = available.map((_, position) => available[(position + index) % available.length]);
      for (const variant of order) seconds[variant.name].push((await request(variant)).seconds);
      console.log(`backbone ${size} px round ${index + 1}/${rounds}: ` +
        available.map((variant) => `${variant.name} ${(count / seconds[variant.name].at(-1)).toFixed(2)}`).join(', ') + ' frames/s');
    }
    const baseline = outputs['torchvision nchw'];
    const scale = Math.max(...new Float32Array(fs.readFileSync(baseline).buffer.slice(0)).map(Math.abs));
    const perVariant = {};
    for (const variant of available) {
      perVariant[variant.name] = {
        framesPerSecond: round(count / median(seconds[variant.name]), 2),
        roundsSeconds: seconds[variant.name].map((value) => round(value, 3)),
        // Against torchvision NCHW fp32, relative to the largest fc7 value.
        maxRelativeDifference: round(maxDifference(outputs[variant.name], baseline) / scale, 7),
        ...(variant.extra ? { extra: variant.extra } : {}),
      };
    }
    // Ratios per round, against the fastest torchvision fp32 variant of that round.
    const fp32 = available.filter((variant) => !variant.extra);
    const torchvisionNames = fp32.filter((variant) => variant.side === reference).map((variant) => variant.name);
    const bestTorchvision = seconds[torchvisionNames[0]].map((_, at) => Math.min(...torchvisionNames.map((name) => seconds[name][at])));
    for (const variant of fp32.filter((candidate) => candidate.side !== reference)) {
      perVariant[variant.name].ratioToBestTorchvision = round(median(seconds[variant.name].map((value, at) => bestTorchvision[at] / value)), 3);
      perVariant[variant.name].ratioToTorchvisionNchw = round(median(seconds[variant.name].map((value, at) => seconds['torchvision nchw'][at] / value)), 3);
      if (tuned && !tuned.unavailable) {
        const tunedName = variants.find((candidate) => candidate.side === tuned).name;
        perVariant[variant.name].ratioToTunedTorchvision = round(median(seconds[variant.name].map((value, at) => seconds[tunedName][at] / value)), 3);
      }
    }
    results[size] = { frames: count, variants: perVariant,
      fastestOurs: fp32.filter((variant) => variant.side === ours).sort((a, b) => median(seconds[a.name]) - median(seconds[b.name]))[0].name,
      fastestTorchvision: torchvisionNames.sort((a, b) => median(seconds[a]) - median(seconds[b]))[0] };
  }
  writeResults('backbone', {
    benchmark: 'VGG16 forward to fc7 (uint8 frames in, normalisation included)',
    rounds, device,
    results,
    settings: { ours: { threads: os.availableParallelism(), OPENBLAS_NUM_THREADS: '1 (set by video-rnn)', fcSplitAcrossThreads: true },
      reference: referenceInfo },
    machine: { ...machine(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
    date: new Date().toISOString(),
  });
} finally {
  for (const side of [ours, reference, tuned].filter(Boolean)) await side.close();
  fs.rmSync(scratch, { recursive: true, force: true });
}
