// Two VGG16 forwards of two 112 px frames through the addon, for bench/profile.mjs to run with
// DNNL_VERBOSE=1: oneDNN then prints its ISA and every primitive it executes on stdout. The marker
// line separates the first forward (which also packs the weights) from the second, a steady one.
import { addon } from '../dist/native.js';

const model = await addon().createModel({ classes: 2, hiddenSize: 8, precision: process.env.BENCH_PRECISION ?? 'fp32' });
const clip = { data: new Uint8Array(2 * 112 * 112 * 3), frames: 2, height: 112, width: 112 };
await model.embed([clip]);
console.log('video-rnn: steady forward');
await model.embed([clip]);
model.dispose();
