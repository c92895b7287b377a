// Float32Arrays handed back (embed, probabilities, getState) view tensor memory through external
// ArrayBuffers. Runtimes with V8's memory sandbox (recent Electron) refuse those and answer
// napi_no_external_buffers_allowed; the addon then copies. VIDEO_RNN_COPY_BUFFERS=1 takes the copy
// path here. An external buffer is not allocated by Node's ArrayBuffer allocator, a copy is, so
// process.memoryUsage().arrayBuffers tells the two paths apart by the size of the results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { maxAbsDiff } from './helpers/clips.mjs';

const script = `
const { addon } = require('./dist/native.js');
(async () => {
  const native = await addon().createModel({ classes: 2, hiddenSize: 4, seed: 6, threads: 1 });
  const clips = Array.from({ length: 4 }, (_, index) => {
    const data = new Uint8Array(16 * 32 * 32 * 3);
    for (let i = 0; i < data.length; i += 1) data[i] = (i * 7 + index * 31) % 251;
    return { data, frames: 16, height: 32, width: 32 };
  });
  const before = process.memoryUsage().arrayBuffers;
  const rows = await native.embed(clips);
  const grown = process.memoryUsage().arrayBuffers - before;
  const probabilities = (await native.predict(clips)).probabilities;
  native.dispose();
  process.stdout.write(JSON.stringify({ grown, bytes: rows.reduce((sum, row) => sum + row.byteLength, 0),
    rows: rows.map((row) => Array.from(row.subarray(0, 4096))), probabilities: Array.from(probabilities) }));
})().catch((error) => { console.error(error); process.exit(1); });`;

const run = (env) => JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }));

test('with external buffers refused the results are copies, equal to the external ones', () => {
  const external = run({ VIDEO_RNN_COPY_BUFFERS: undefined });
  const copied = run({ VIDEO_RNN_COPY_BUFFERS: '1' });
  assert.equal(external.bytes, 4 * 16 * 4096 * 4);
  assert.equal(copied.bytes, external.bytes);
  // 1 MiB of results: copied, Node's allocator holds at least that much more; external, next to nothing.
  assert.ok(copied.grown >= copied.bytes, `copy path: arrayBuffers grew by ${copied.grown} for ${copied.bytes} bytes`);
  assert.ok(external.grown < external.bytes / 100, `external path: arrayBuffers grew by ${external.grown}`);
  assert.ok(Math.max(...external.rows[0].map(Math.abs)) > 0, 'the embeddings are not all zeros');
  external.rows.forEach((row, index) => assert.equal(maxAbsDiff(row, copied.rows[index]), 0, `clip ${index}`));
  assert.equal(maxAbsDiff(external.probabilities, copied.probabilities), 0);
});
