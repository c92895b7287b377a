// Data-parallel training across processes on c10d's Gloo backend, on loopback only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../dist/free-port.js';
import { maxParameterDifference, tempDir } from './helpers/clips.mjs';

const worker = path.resolve('test/helpers/distributed-worker.mjs');

/** Starts one worker; resolves with its exit code and parsed JSON lines. */
function run(args, env, onLine = () => {}) {
  const child = spawn(process.execPath, [worker, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = [];
  let buffered = '';
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    for (let at = buffered.indexOf('\n'); at >= 0; at = buffered.indexOf('\n')) {
      const line = JSON.parse(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
      lines.push(line);
      onLine(line, child);
    }
  });
  const done = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, lines })));
  return { child, done };
}


test('2 ranks with 4 clips each equal one process with batch 8 after 3 steps; both ranks hold the same parameters', async () => {
  const dir = tempDir();
  try {
    const port = String(await freePort());
    const group = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port };
    const out = (name) => path.join(dir, `${name}.safetensors`);
    const ranks = [0, 1].map((rank) => run([out(`rank${rank}`), '4', '1'], { ...group, RANK: String(rank) }));
    const singleRun = run([out('single'), '8', '1'], { WORLD_SIZE: '' });
    const [rank0, rank1, alone] = await Promise.all([...ranks.map((r) => r.done), singleRun.done]);
    for (const result of [rank0, rank1, alone]) assert.equal(result.code, 0, JSON.stringify(result.lines));
    // Rank 0 alone reports progress: 24 clips in global batches of 8 are 3 steps.
    assert.equal(rank0.lines.filter((line) => line.progress).length, 3);
    assert.equal(rank1.lines.filter((line) => line.progress).length, 0);
    assert.equal(await maxParameterDifference(out('rank0'), out('rank1')), 0);
    assert.ok(await maxParameterDifference(out('rank0'), out('single')) < 1e-5);
    const lossOf = (result) => result.lines.find((line) => line.done).losses[0];
    assert.ok(Math.abs(lossOf(rank0) - lossOf(alone)) < 1e-6);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('killing one rank makes the other fail with E_DISTRIBUTED instead of hanging', async () => {
  const dir = tempDir();
  try {
    const port = String(await freePort());
    const group = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port };
    const rank1 = run([path.join(dir, 'r1.safetensors'), '4', '500', '15000'], { ...group, RANK: '1' });
    let killed = false;
    const rank0 = run([path.join(dir, 'r0.safetensors'), '4', '500', '15000'], { ...group, RANK: '0' }, (line) => {
      if (line.progress && !killed) {
        killed = true;
        rank1.child.kill('SIGKILL');
      }
    });
    const started = Date.now();
    const result = await rank0.done;
    assert.ok(killed, 'rank 1 was killed during training');
    assert.equal(result.code, 3);
    const failure = result.lines.find((line) => line.error);
    assert.equal(failure.error, 'E_DISTRIBUTED', failure.message);
    assert.ok(Date.now() - started < 60000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('aborting one rank stops every rank at the same step with E_ABORTED, not a timeout', async () => {
  const dir = tempDir();
  try {
    const port = String(await freePort());
    const group = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port };
    // A 60 s collective timeout: a rank left waiting would fail long after the 20 s allowed below.
    const rank1 = run([path.join(dir, 'r1.safetensors'), '4', '500', '60000'], { ...group, RANK: '1' });
    let abortedAt = 0;
    const rank0 = run([path.join(dir, 'r0.safetensors'), '4', '500', '60000'], { ...group, RANK: '0' }, (line) => {
      if (line.progress && !abortedAt) {
        abortedAt = Date.now();
        rank1.child.kill('SIGUSR2');
      }
    });
    const [first, second] = await Promise.all([rank0.done, rank1.done]);
    assert.ok(abortedAt > 0, 'rank 1 was aborted during training');
    assert.ok(Date.now() - abortedAt < 20000, `both ranks stopped ${Date.now() - abortedAt} ms after the abort`);
    for (const result of [first, second]) {
      const failure = result.lines.find((line) => line.error);
      assert.equal(failure?.error, 'E_ABORTED', JSON.stringify(result.lines.slice(-2)));
    }
    assert.match(first.lines.find((line) => line.error).message, /another rank/);
    assert.ok(!fs.existsSync(path.join(dir, 'r0.safetensors')), 'an aborted run saves nothing');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a port in use, a missing peer and a rank outside the world size give clear errors', async () => {
  const dir = tempDir();
  const blocker = net.createServer();
  try {
    await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busy = String(blocker.address().port);
    const inUse = await run([path.join(dir, 'a.safetensors'), '4', '1', '3000'], { WORLD_SIZE: '2', RANK: '0', MASTER_PORT: busy }).done;
    assert.equal(inUse.lines.find((line) => line.error)?.error, 'E_DISTRIBUTED', JSON.stringify(inUse.lines));
    const lonely = await run([path.join(dir, 'b.safetensors'), '4', '1', '2000'],
      { WORLD_SIZE: '2', RANK: '0', MASTER_PORT: String(await freePort()) }).done;
    assert.equal(lonely.lines.find((line) => line.error)?.error, 'E_DISTRIBUTED', JSON.stringify(lonely.lines));
    const outside = await run([path.join(dir, 'c.safetensors'), '4', '1'], { WORLD_SIZE: '2', RANK: '2', MASTER_PORT: busy }).done;
    assert.equal(outside.lines.find((line) => line.error)?.error, 'E_INVALID_ARGUMENT', JSON.stringify(outside.lines));
  } finally {
    blocker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
