// The on-disk feature store: entries round-trip (float32 exactly, bf16/fp16 as PyTorch rounds), bad
// entries are never returned, writers in several processes never expose half an entry nor compute
// one twice, the size bound evicts least recently used entries, and stats/prune count what is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FeatureStore, featureKey, videoDigest } from '../dist/index.js';
import { videoDigestCounters } from '../dist/features/identity.js';
import { BACKBONE, storeKey, storeOrigin, storeRows } from './helpers/store-rows.mjs';

const PYTHON = '/usr/bin/python3';
const worker = fileURLToPath(new URL('./helpers/store-worker.mjs', import.meta.url));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'video-rnn-store-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));
let folders = 0;
const newFolder = () => path.join(scratch, `store-${folders++}`);

async function openStore(settings) {
  const warnings = [];
  const store = await FeatureStore.open(settings, (message) => warnings.push(message));
  return { store, warnings };
}

function entryPath(root, key) {
  return path.join(root, 'entries', key.slice(0, 2), `${key}.feat`);
}

/** Every file under a folder, relative. */
function allFiles(root) {
  return fs.readdirSync(root, { recursive: true }).filter((name) => fs.statSync(path.join(root, name)).isFile());
}

const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid;

test('float32 entries round-trip bit for bit with their origin', async () => {
  const { store } = await openStore(newFolder());
  assert.equal(store.dtype, 'float32');
  const rows = new Float32Array([0, -0, 1.5, -2.25e-40, 3.4e38, Math.PI, -1e-7, 123456.789, 7, 8, 9, 10]);
  const origin = { ...storeOrigin, source: { path: '/data/a.mp4', size: 10, mtimeMs: 5.5, sha256: 'c'.repeat(64) } };
  const key = storeKey(1);
  assert.equal(await store.get(key), undefined);
  assert.equal(await store.has(key), false);
  assert.equal(await store.put(key, rows, 3, origin), true);
  assert.equal(await store.has(key), true);
  assert.equal(await store.put(key, rows, 3, origin), false, 'an existing entry is not written again');
  const read = await store.get(key);
  assert.equal(read.frames, 3);
  assert.equal(read.dim, 4);
  assert.deepEqual(new Uint32Array(read.data.buffer), new Uint32Array(rows.buffer));
  assert.deepEqual(read.origin, origin);
  assert.deepEqual(store.counters, { hits: 1, misses: 1, writes: 1, corrupt: 0, evicted: 0 });
  // The documented layout: 16 fixed bytes, a JSON header padded to 16, the rows, a 32-byte SHA-256.
  const bytes = fs.readFileSync(entryPath(store.path, key));
  assert.equal(bytes.subarray(0, 8).toString('latin1'), 'VRNNFEAT');
  const headerBytes = bytes.readUInt32LE(12);
  assert.equal((16 + headerBytes) % 16, 0);
  assert.equal(JSON.parse(bytes.subarray(16, 16 + headerBytes).toString()).key, key);
  assert.equal(bytes.length, 16 + headerBytes + rows.length * 4 + 32);
  assert.deepEqual(bytes.subarray(-32), createHash('sha256').update(bytes.subarray(0, -32)).digest());
});

test('bf16 and fp16 entries hold what PyTorch rounds to, at half the size', async () => {
  // Hand-checked patterns: ties go to even, subnormals, and fp16 saturating at 65504.
  const known = [
    [1, 0x3f80, 0x3c00], [0.1, 0x3dcd, 0x2e66], [-2, 0xc000, 0xc000], [65504, 0x4780, 0x7bff],
    [1 + 2 ** -8, 0x3f80, 0x3c04], [1 + 3 * 2 ** -8, 0x3f82, 0x3c0c], [2 ** -24, 0x3380, 0x0001], [2 ** -25, 0x3300, 0x0000],
    [1 + 2 ** -11, 0x3f80, 0x3c00], [1 + 3 * 2 ** -11, 0x3f80, 0x3c02], [1e5, 0x47c3, 0x7bff], [-Infinity, 0xff80, 0xfc00],
    [1.5 * 2 ** -24, 0x33c0, 0x0002], [2.5 * 2 ** -24, 0x3420, 0x0002], [-3.5 * 2 ** -24, 0xb460, 0x8004],
  ];
  const random = new Float32Array(2000);
  let state = 12345;
  for (let i = 0; i < random.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    random[i] = ((state / 2 ** 32) - 0.5) * 2 ** ((i % 50) - 34);
  }
  const values = Float32Array.from([...known.map(([value]) => value), ...random]);
  const input = path.join(scratch, 'halves.f32');
  fs.writeFileSync(input, Buffer.from(values.buffer));
  const script = `import sys, torch
v = torch.frombuffer(bytearray(open(sys.argv[1], 'rb').read()), dtype=torch.float32)
for t in (torch.bfloat16, torch.float16):
    sys.stdout.write(v.to(t).to(torch.float32).numpy().tobytes().hex() + '\\n')`;
  const [bf16Hex, fp16Hex] = execFileSync(PYTHON, ['-c', script, input], { encoding: 'utf8' }).trim().split('\n');
  for (const [dtype, hex, column] of [['bf16', bf16Hex, 1], ['fp16', fp16Hex, 2]]) {
    const { store } = await openStore({ path: newFolder(), dtype });
    const key = storeKey(2);
    assert.equal(await store.put(key, values, values.length, storeOrigin), true);
    const floatBytes = values.length * 4;
    const size = fs.statSync(entryPath(store.path, key)).size;
    assert.ok(size < floatBytes / 2 + 1024 && size > floatBytes / 2, `${dtype} entry of ${size} bytes for ${floatBytes} bytes of float32`);
    const read = (await store.get(key)).data;
    const torchValues = new Float32Array(new Uint8Array(Buffer.from(hex, 'hex')).buffer);
    const halves = (x) => {
      const bits = new Uint32Array(new Float32Array([x]).buffer)[0];
      return dtype === 'bf16' ? bits >>> 16 : undefined;
    };
    known.forEach(([value, bf16, fp16], i) => {
      if (dtype === 'bf16') assert.equal(halves(read[i]), bf16, `bf16 of ${value}`);
      else {
        const expected = fp16 === 0x7bff ? 65504 : fp16 === 0xfc00 ? -Infinity
          : (fp16 & 0x7c00 ? (1 + (fp16 & 0x3ff) / 1024) * 2 ** (((fp16 >> 10) & 0x1f) - 15) : (fp16 & 0x3ff) * 2 ** -24) * (fp16 & 0x8000 ? -1 : 1);
        assert.equal(read[i], expected, `fp16 of ${value}`);
      }
    });
    let compared = 0;
    for (let i = 0; i < values.length; i++) {
      // PyTorch overflows to infinity where the store saturates to ±65504.
      if (dtype === 'fp16' && Number.isFinite(values[i]) && Math.abs(values[i]) >= 65504) {
        assert.equal(Math.abs(read[i]), 65504);
        continue;
      }
      assert.ok(Object.is(read[i], torchValues[i]), `${dtype} of ${values[i]}: store ${read[i]}, PyTorch ${torchValues[i]}`);
      compared++;
    }
    assert.ok(compared > 1900);
  }
});

test('a truncated, altered, misplaced or foreign entry is never returned: warned once, removed, written again', async () => {
  const { store, warnings } = await openStore(newFolder());
  const rows = storeRows(3, 4, 16);
  const spoil = {
    truncated: (file) => fs.truncateSync(file, fs.statSync(file).size - 10),
    flipped: (file) => {
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 100] ^= 0x01;
      fs.writeFileSync(file, bytes);
    },
    misplaced: (file, key) => fs.copyFileSync(entryPath(store.path, storeKey(99)), file),
    garbage: (file) => fs.writeFileSync(file, 'not an entry at all, just some text that is long enough'),
    empty: (file) => fs.writeFileSync(file, ''),
  };
  assert.equal(await store.put(storeKey(99), rows, 4, storeOrigin), true);
  let index = 10;
  for (const [name, damage] of Object.entries(spoil)) {
    const key = storeKey(index++);
    const file = entryPath(store.path, key);
    assert.equal(await store.put(key, rows, 4, storeOrigin), true);
    damage(file, key);
    const before = warnings.length;
    assert.equal(await store.get(key), undefined, name);
    assert.equal(warnings.length, before + 1, `${name}: one warning`);
    assert.ok(warnings.at(-1).includes(file), `${name}: the warning names the file: ${warnings.at(-1)}`);
    assert.equal(fs.existsSync(file), false, `${name}: the file is removed`);
    assert.equal(await store.put(key, rows, 4, storeOrigin), true, `${name}: written again`);
    assert.deepEqual((await store.get(key)).data, rows);
    damage(file, key);
    assert.equal(await store.get(key), undefined);
    assert.equal(warnings.length, before + 1, `${name}: warned once per key`);
  }
  assert.equal(store.counters.corrupt, 10);
});

test('a reader polling while another process writes never sees part of an entry; no temporary file remains', async () => {
  const { store, warnings } = await openStore(newFolder());
  const keys = 12;
  const [frames, dim] = [64, 4096];
  const child = spawn(process.execPath, [worker, JSON.stringify({ mode: 'write', path: store.path, keys, frames, dim })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let running = true;
  exited.then(() => { running = false; });
  const seen = new Set();
  let reads = 0;
  while (running || seen.size < keys) {
    for (let index = 0; index < keys; index++) {
      const found = await store.get(storeKey(index));
      reads++;
      if (!found) continue;
      assert.deepEqual(found.data, storeRows(index, frames, dim), `entry ${index} read whole`);
      seen.add(index);
    }
    if (!running && seen.size < keys) break;
  }
  assert.equal(await exited, 0);
  assert.equal(seen.size, keys);
  assert.deepEqual(warnings, []);
  assert.ok(reads > keys * 2, `the reader polled during the writes (${reads} reads)`);
  assert.deepEqual(allFiles(store.path).filter((name) => name.endsWith('.tmp')), []);
});

function runWorkers(count, config) {
  return Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { errors += chunk; });
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`worker exited ${code}: ${errors}`))));
  })));
}

test('four processes filling the same 50 entries: each present once and readable; with claims each computed once', async () => {
  for (const claims of [false, true]) {
    const { store, warnings } = await openStore(newFolder());
    const outputs = await runWorkers(4, { mode: 'fill', path: store.path, keys: 50, frames: 8, dim: 512, claims });
    for (const output of outputs) assert.ok(output.endsWith('done\n'));
    const computed = outputs.join('').split('\n').filter((line) => line.startsWith('computed ')).map((line) => Number(line.slice(9)));
    assert.deepEqual(outputs.join('').split('\n').filter((line) => line.startsWith('lost')), []);
    const files = allFiles(store.path);
    assert.equal(files.filter((name) => name.endsWith('.feat')).length, 50);
    assert.deepEqual(files.filter((name) => !name.endsWith('.feat') && name !== 'store.json'), [], 'no claims or temporary files left');
    for (let index = 0; index < 50; index++) assert.deepEqual((await store.get(storeKey(index))).data, storeRows(index, 8, 512));
    assert.deepEqual(warnings, []);
    if (claims) assert.deepEqual(computed.sort((a, b) => a - b), [...Array(50).keys()], 'with claims, each entry computed exactly once');
    else assert.ok(computed.length >= 50);
  }
});

test('claims: a live writer holds one, a dead pid or an old claim is taken over, release removes only its own', async () => {
  const { store } = await openStore({ path: newFolder(), claimTtlMs: 2000 });
  const claimPath = (key) => path.join(store.path, 'claims', `${key}.claim`);
  const write = (key, record) => fs.writeFileSync(claimPath(key), JSON.stringify({ token: 'x', ...record }));
  const key = storeKey(1);
  const release = await store.claim(key);
  assert.equal(typeof release, 'function');
  assert.equal(await store.claim(key), undefined, 'held by this process');
  await release();
  assert.equal(fs.existsSync(claimPath(key)), false);
  const again = await store.claim(key);
  assert.equal(typeof again, 'function');
  await again();

  write(key, { host: os.hostname(), pid: process.ppid, time: Date.now() });
  assert.equal(await store.claim(key), undefined, 'a live pid on this host holds it');
  write(key, { host: os.hostname(), pid: deadPid(), time: Date.now() });
  const takeover = await store.claim(key);
  assert.equal(typeof takeover, 'function', 'a dead pid on this host is taken over');
  await takeover();
  write(key, { host: 'another-machine', pid: 1, time: Date.now() });
  assert.equal(await store.claim(key), undefined, 'another host within the TTL holds it');
  write(key, { host: 'another-machine', pid: 1, time: Date.now() - 5000 });
  const old = await store.claim(key);
  assert.equal(typeof old, 'function', 'older than the TTL is taken over');
  write(key, { host: 'another-machine', pid: 1, time: Date.now() });
  await old();
  assert.equal(fs.existsSync(claimPath(key)), true, 'release leaves a claim someone else took over');

  // waitFor: times out while the claim is live, returns the rows once they are put, and when the claim goes.
  let started = Date.now();
  assert.equal(await store.waitFor(key, { timeoutMs: 300 }), undefined);
  assert.ok(Date.now() - started >= 290);
  setTimeout(() => store.put(key, storeRows(5, 2, 3), 2, storeOrigin), 150);
  assert.deepEqual((await store.waitFor(key, { timeoutMs: 5000 })).data, storeRows(5, 2, 3));
  const other = storeKey(2);
  write(other, { host: 'another-machine', pid: 1, time: Date.now() });
  setTimeout(() => fs.unlinkSync(claimPath(other)), 150);
  started = Date.now();
  assert.equal(await store.waitFor(other, { timeoutMs: 5000 }), undefined);
  assert.ok(Date.now() - started < 2000, 'returns when the claim disappears');
  write(other, { host: 'another-machine', pid: 1, time: Date.now() });
  await assert.rejects(store.waitFor(other, { signal: AbortSignal.timeout(100) }), { code: 'E_ABORTED' });
});

test('the size bound evicts least recently used entries, never the working set, and refuses when nothing can go', async () => {
  const root = newFolder();
  const { store: filler } = await openStore(root);
  const rows = storeRows(0, 4, 256);
  for (let index = 0; index < 10; index++) assert.equal(await filler.put(storeKey(index), rows, 4, storeOrigin), true);
  const size = fs.statSync(entryPath(root, storeKey(0))).size;
  const hour = 3600_000;
  // Entry 0 is the least recently used, entry 9 the most.
  for (let index = 0; index < 10; index++) {
    const time = new Date(Date.now() - (20 - index) * hour);
    fs.utimesSync(entryPath(root, storeKey(index)), time, time);
  }
  const bound = Math.floor(10.5 * size);
  const { store } = await openStore({ path: root, maxBytes: bound });
  const present = () => [...Array(14).keys()].filter((index) => fs.existsSync(entryPath(root, storeKey(index))));
  assert.ok(await store.get(storeKey(0)), 'read: now in the working set, and its last use is now');
  assert.equal(await store.put(storeKey(10), rows, 4, storeOrigin), true);
  // Down to 90% of the bound with the new entry (9 of 10.5 entries): 1 and 2 were the least recently used.
  assert.deepEqual(present(), [0, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(store.counters.evicted, 2);
  const total = () => present().length * size;
  assert.ok(total() <= bound);

  const { store: next } = await openStore({ path: root, maxBytes: bound });
  for (const index of [11, 12, 13]) assert.equal(await next.put(storeKey(index), rows, 4, storeOrigin), true);
  assert.ok(total() <= bound);
  assert.equal(present().includes(0), true, 'entry 0, read an hour after its last use, is recent now');
  assert.equal(present().includes(4), false, 'entry 4 is now the least recently used');

  const { store: small, warnings } = await openStore({ path: newFolder(), maxBytes: Math.floor(2.5 * size) });
  assert.equal(await small.put(storeKey(0), rows, 4, storeOrigin), true);
  assert.equal(await small.put(storeKey(1), rows, 4, storeOrigin), true);
  assert.equal(await small.put(storeKey(2), rows, 4, storeOrigin), false, 'only the working set is there');
  assert.equal(await small.put(storeKey(3), rows, 4, storeOrigin), false);
  assert.equal(warnings.length, 1, 'warned once');
  assert.match(warnings[0], /full/);
  assert.equal(small.counters.evicted, 0);
  assert.equal(allFiles(small.path).filter((name) => name.endsWith('.feat')).length, 2);
});

test('a folder that is not a store, another format version, or another dtype: E_FEATURE_STORE', async () => {
  const root = newFolder();
  const { store } = await openStore({ path: root, dtype: 'fp16' });
  assert.equal((await openStore(root)).store.dtype, 'fp16', 'asking no dtype accepts the store\'s');
  await assert.rejects(FeatureStore.open({ path: root, dtype: 'float32' }), { code: 'E_FEATURE_STORE' });
  await assert.rejects(FeatureStore.open({ path: root, dtype: 'bf16' }), { code: 'E_FEATURE_STORE' });
  const description = JSON.parse(fs.readFileSync(path.join(store.path, 'store.json'), 'utf8'));
  fs.writeFileSync(path.join(root, 'store.json'), JSON.stringify({ ...description, version: 2 }));
  await assert.rejects(FeatureStore.open(root), { code: 'E_FEATURE_STORE' });
  const other = newFolder();
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
  await assert.rejects(FeatureStore.open(other), { code: 'E_FEATURE_STORE' });
  assert.deepEqual(fs.readdirSync(other), ['notes.txt'], 'nothing written into a foreign folder');
  await assert.rejects(FeatureStore.open(path.join(other, 'notes.txt')), { code: 'E_FEATURE_STORE' });
  await assert.rejects(FeatureStore.open({ path: newFolder(), dtype: 'int8' }), { code: 'E_INVALID_ARGUMENT' });
  await assert.rejects(FeatureStore.open({ path: newFolder(), maxBytes: -1 }), { code: 'E_INVALID_ARGUMENT' });
});

test('keys follow the content: videoDigest rehashes a changed file only, featureKey ignores field order', async () => {
  const file = path.join(scratch, 'clip.bin');
  fs.writeFileSync(file, 'first content');
  // The same size and mtime after the rewrite below: only the content and the status-change time differ.
  const mtime = new Date('2026-01-02T03:04:05.678Z');
  fs.utimesSync(file, mtime, mtime);
  const hashed = videoDigestCounters.hashed;
  const first = await videoDigest(file);
  assert.equal(first.sha256, createHash('sha256').update('first content').digest('hex'));
  assert.equal(first.path, path.resolve(file));
  assert.equal(first.size, 13);
  assert.deepEqual(await videoDigest(file), first);
  assert.equal(videoDigestCounters.hashed, hashed + 1, 'an unchanged file is hashed once');
  fs.writeFileSync(file, 'other content');
  fs.utimesSync(file, mtime, mtime);
  const second = await videoDigest(file);
  assert.equal(second.sha256, createHash('sha256').update('other content').digest('hex'), 'same size and mtime, new content');
  assert.equal(videoDigestCounters.hashed, hashed + 2);
  await assert.rejects(videoDigest(path.join(scratch, 'missing.mp4')), { code: 'E_VIDEO_NOT_FOUND' });

  const parts = { video: first.sha256, frameSize: 112, sampling: { fps: 5, maxFrames: 16 }, backbone: BACKBONE, precision: 'fp32' };
  const key = featureKey(parts);
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(featureKey({ ...parts, sampling: { maxFrames: 16, fps: 5 } }), key);
  for (const change of [{ video: second.sha256 }, { frameSize: 64 }, { sampling: { fps: 4, maxFrames: 16 } }, { backbone: 'cd'.repeat(32) }, { precision: 'bf16' }]) {
    assert.notEqual(featureKey({ ...parts, ...change }), key, JSON.stringify(change));
  }
});

test('a stale claim left set aside by a writer that died is a temporary file: prune removes it once older than the claim TTL', async () => {
  const { store } = await openStore({ path: newFolder(), claimTtlMs: 300 });
  const claims = path.join(store.path, 'claims');
  fs.mkdirSync(claims, { recursive: true });
  const aside = path.join(claims, `${storeKey(1)}.claim.0123456789abcdef.stale`);
  // What a writer sets aside is the old claim, with its old mtime: the age that counts is the rename's.
  fs.writeFileSync(aside, JSON.stringify({ host: os.hostname(), pid: deadPid(), time: 0, token: 'old' }));
  fs.utimesSync(aside, new Date(0), new Date(0));
  const size = fs.statSync(aside).size;
  assert.equal((await store.stats()).temporaryFiles, 1);
  assert.equal((await store.prune({})).reasons.temporaryFile, 0, 'just set aside: a live writer may still put it back');
  assert.ok(fs.existsSync(aside));
  await new Promise((resolve) => setTimeout(resolve, 400));
  const report = await store.prune({});
  assert.deepEqual([report.reasons.temporaryFile, report.removed, report.bytesFreed], [1, 1, size]);
  assert.ok(!fs.existsSync(aside));
  assert.equal((await store.stats()).temporaryFiles, 0);
});

test('stats counts entries per backbone, claims and bad entries; prune removes what it is asked to (or only reports)', async () => {
  const { store } = await openStore({ path: newFolder(), claimTtlMs: 60_000 });
  const other = 'cd'.repeat(32);
  const videos = ['kept', 'gone', 'changed'].map((name) => {
    const file = path.join(scratch, `${name}.mp4`);
    fs.writeFileSync(file, `video ${name}`);
    return file;
  });
  const rows = storeRows(1, 2, 8);
  for (const [index, file] of videos.entries()) {
    const source = await videoDigest(file);
    assert.equal(await store.put(storeKey(index), rows, 2, { ...storeOrigin, source }), true);
  }
  assert.equal(await store.put(storeKey(3), rows, 2, storeOrigin), true);
  assert.equal(await store.put(storeKey(4, other), rows, 2, { ...storeOrigin, backbone: other }), true);
  assert.equal(await store.put(storeKey(5), rows, 2, storeOrigin), true);
  const [withSource, gone, changed, size] = [0, 1, 2, 3].map((index) => fs.statSync(entryPath(store.path, storeKey(index))).size);
  fs.truncateSync(entryPath(store.path, storeKey(5)), 40);
  fs.rmSync(videos[1]);
  fs.writeFileSync(videos[2], 'video CHANGED, longer');
  const claims = path.join(store.path, 'claims');
  fs.mkdirSync(claims, { recursive: true });
  fs.writeFileSync(path.join(claims, `${storeKey(6)}.claim`), JSON.stringify({ host: os.hostname(), pid: deadPid(), time: Date.now(), token: 'a' }));
  fs.writeFileSync(path.join(claims, `${storeKey(7)}.claim`), JSON.stringify({ host: os.hostname(), pid: process.pid, time: Date.now(), token: 'b' }));
  const shard = path.dirname(entryPath(store.path, storeKey(8)));
  fs.mkdirSync(shard, { recursive: true });
  fs.writeFileSync(path.join(shard, `.${storeKey(8)}.${deadPid()}.${Buffer.from(os.hostname()).toString('hex')}.aaaa.tmp`), 'partial');

  const expectedStats = {
    path: store.path, dtype: 'float32', entries: 5, bytes: withSource + gone + changed + 2 * size, claims: 2, staleClaims: 1, corrupt: 1, temporaryFiles: 1,
    backbones: { [BACKBONE]: { entries: 4, bytes: withSource + gone + changed + size }, [other]: { entries: 1, bytes: size } },
  };
  assert.deepEqual(await store.stats(), expectedStats);
  const options = { keepBackbones: [BACKBONE], missingSources: true, changedSources: true };
  const expectedReport = {
    removed: 5, bytesFreed: gone + changed + size + 40 + 7, kept: 2,
    reasons: { otherBackbone: 1, missingSource: 1, changedSource: 1, corrupt: 1, staleClaim: 1, temporaryFile: 1 },
  };
  assert.deepEqual(await store.prune({ ...options, dryRun: true }), expectedReport);
  assert.deepEqual(await store.stats(), expectedStats, 'a dry run removes nothing');
  assert.deepEqual(await store.prune(options), expectedReport);
  assert.deepEqual(await store.stats(), {
    ...expectedStats, entries: 2, bytes: withSource + size, claims: 1, staleClaims: 0, corrupt: 0, temporaryFiles: 0,
    backbones: { [BACKBONE]: { entries: 2, bytes: withSource + size } },
  });
  assert.ok(await store.get(storeKey(0)));
  assert.ok(await store.get(storeKey(3)));
  assert.deepEqual(await store.prune(options), { removed: 0, bytesFreed: 0, kept: 2, reasons: { otherBackbone: 0, missingSource: 0, changedSource: 0, corrupt: 0, staleClaim: 0, temporaryFile: 0 } });
});
