// Two VGG16 forwards of BENCH_FRAMES (default 2) 112 px frames through the addon, for
// bench/profile.mjs to run with DNNL_VERBOSE=1: oneDNN then prints its ISA and every primitive it
// executes, with its time, on stdout. The marker line separates the first forward (which also packs
// the weights) from the second, a steady one. BENCH_PRECISION=bf16 runs what predict runs in bf16
// (the prepacked path where the CPU has native bf16).
import { addon } from '../dist/native.js';
import { cpuBf16 } from '../dist/backend.js';

const precision = process.env.BENCH_PRECISION ?? 'fp32';
const frames = Number(process.env.BENCH_FRAMES ?? 2);
const model = await addon().createModel({ classes: 2, hiddenSize: 8, precision,
  bf16PrepackedConvolutions: precision === 'bf16' && cpuBf16().native === true });
const clip = { data: new Uint8Array(frames * 112 * 112 * 3), frames, height: 112, width: 112 };
await model.embed([clip]);
console.log('video-rnn: steady forward');
await model.embed([clip]);
model.dispose();
