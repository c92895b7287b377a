#!/usr/bin/env node
// Fuzzes the weights readers (safetensors, torch zip, torch legacy, and the backbone loader that
// picks among them) with mutated, truncated and deliberately hostile files. Every case must end
// in success or a VideoRNNError coded E_WEIGHTS_FORMAT / E_WEIGHTS_SHAPE: another exception, a
// crash or a hang is a failure. Hostile cases must not succeed.
//
//   node bench/fuzz-weights.mjs [cases=10000] [seed=1]   -> bench/results/fuzz-weights.json
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadBackboneWeights, readSafetensors, readTorchFile } from '../dist/weights/index.js';
import {
  buildSafetensors, buildTorchLegacy, buildTorchZip, floatBytes, generate, op, removeDirectory, temporaryDirectory,
  tensorDictPickle, u64,
} from '../test/weights.fixtures.mjs';

/** mulberry32: a small seeded generator, so that a failing case can be replayed from its seed. */
function generator(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 2 ** 32;
  };
  const below = (limit) => Math.floor(next() * limit);
  return { next, below, pick: (items) => items[below(items.length)] };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 53, 2 ** 63, 2 ** 64 - 1];

function mutateBytes(random, source) {
  const bytes = Buffer.from(source);
  const strategy = random.pick(['truncate', 'flip', 'flip', 'interesting', 'splice']);
  if (strategy === 'truncate') return { strategy, bytes: bytes.subarray(0, random.below(bytes.length)) };
  if (strategy === 'flip') {
    for (let count = 1 + random.below(8); count > 0; count--) {
      const at = random.below(bytes.length);
      bytes[at] = random.next() < 0.5 ? bytes[at] ^ (1 << random.below(8)) : random.below(256);
    }
    return { strategy, bytes };
  }
  if (strategy === 'interesting') {
    const width = random.pick([1, 2, 4, 8]);
    const at = random.below(Math.max(1, bytes.length - width));
    const value = BigInt.asUintN(8 * width, BigInt(random.pick([...INTERESTING, bytes.length, bytes.length + 1])));
    for (let index = 0; index < width && at + index < bytes.length; index++) {
      bytes[at + index] = Number((value >> BigInt(8 * index)) & 0xffn);
    }
    return { strategy, bytes };
  }
  const start = random.below(bytes.length);
  const end = Math.min(bytes.length, start + 1 + random.below(64));
  const chunk = bytes.subarray(start, end);
  const spliced = random.next() < 0.5
    ? Buffer.concat([bytes.subarray(0, start), bytes.subarray(end)])
    : Buffer.concat([bytes.subarray(0, end), chunk, bytes.subarray(end)]);
  return { strategy, bytes: spliced };
}

/** Edits one field of a safetensors header and re-serialises it: offsets, shapes, dtypes. */
function mutateHeader(random, source) {
  const length = Number(source.readBigUInt64LE(0));
  const header = JSON.parse(source.subarray(8, 8 + length).toString('utf8'));
  const data = source.subarray(8 + length);
  const names = Object.keys(header).filter((name) => name !== '__metadata__');
  const entry = header[random.pick(names)];
  const other = header[random.pick(names)];
  const edits = [
    () => { entry.data_offsets = [entry.data_offsets[0], data.length + 1 + random.below(1e9)]; },
    () => { entry.data_offsets = [other.data_offsets[0], other.data_offsets[0] + (entry.data_offsets[1] - entry.data_offsets[0])]; },
    () => { entry.data_offsets = [entry.data_offsets[1], entry.data_offsets[0]]; },
    () => { entry.data_offsets = [2 ** 53 + random.below(99), 2 ** 64]; },
    () => { entry.shape = entry.shape.map(() => random.pick([0, 1, 2 ** 31, 2 ** 53, -1, 1.5, '2', null])); },
    () => { entry.shape = [...entry.shape, random.pick([1, 2, 0])]; },
    () => { entry.dtype = random.pick(['F32', 'F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL', 'C64', 'F8_E4M3', '', 7]); },
    () => { header.__metadata__ = random.pick([{ epoch: 1 }, [], 'x', { nested: { a: 'b' } }, null]); },
    () => { delete header[random.pick(names)]; },
    () => { header[random.pick(names)] = random.pick([null, 1, [], 'F32']); },
  ];
  random.pick(edits)();
  return { strategy: 'header', bytes: buildSafetensors(header, data) };
}

const FOREIGN_GLOBALS = [['os', 'system'], ['posix', 'system'], ['nt', 'system'], ['builtins', 'eval'],
  ['builtins', 'exec'], ['__builtin__', 'eval'], ['builtins', 'getattr'], ['subprocess', 'Popen'],
  ['torch.storage', '_load_from_bytes'], ['torch', 'load'], ['numpy.core.multiarray', '_reconstruct'],
  ['torch.nn.modules.linear', 'Linear'], ['collections', 'defaultdict'], ['torch._utils', '_rebuild_qtensor']];

const storage = floatBytes(Array.from({ length: 16 }, (_, index) => index));
const view = (overrides) => ({ name: 'weight', key: '0', numel: 16, shape: [4, 4], ...overrides });

function torchFile(random, pickleFor, storages = { 0: storage }) {
  return random.next() < 0.5
    ? buildTorchZip(pickleFor(false), storages)
    : buildTorchLegacy(pickleFor(true), Object.entries(storages).map(([key, bytes]) => ({ key, bytes })));
}

/** Files built to be refused: each must end in an error, never in success. */
const SAFETENSORS_HOSTILE = new Set(['huge header length', 'safetensors overlap']);
const HOSTILE = {
  'huge header length': (random) => buildSafetensors({}, Buffer.alloc(0), { headerLength: random.pick([2n ** 63n, 2n ** 64n - 1n, 2n ** 32n, 101_000_000n]) }),
  'safetensors overlap': () => buildSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, Buffer.alloc(12)),
  'deep pickle nesting': (random) => {
    const depth = 300 + random.below(200_000);
    const pickle = random.next() < 0.5
      ? Buffer.concat([op.proto(2), Buffer.alloc(depth, 0x28), op.stop])
      : Buffer.concat([op.proto(2), Buffer.alloc(depth, 0x5d), Buffer.alloc(depth - 1, 0x61), op.stop]);
    return torchFile(random, () => pickle, {});
  },
  'foreign global': (random, marker) => {
    const [module, name] = random.pick(FOREIGN_GLOBALS);
    const evil = Buffer.concat([op.global(module, name), op.mark, op.text(`touch ${marker}`), op.tuple, op.reduce]);
    return torchFile(random, (legacy) => {
      const honest = tensorDictPickle([view({})], { legacy });
      // Put the call where a value would be: after the dict, as the value of a second key.
      return Buffer.concat([honest.subarray(0, -2), op.text('hook'), evil, op.setItems, op.stop]);
    });
  },
  'huge declared length': (random) => {
    const opcode = random.pick([[0x8d, 8], [0x8e, 8], [0x96, 8], [0x95, 8], [0x58, 4], [0x42, 4], [0x8b, 4]]);
    const length = Buffer.alloc(opcode[1], 0xff);
    if (opcode[0] === 0x8b) length[3] = 0x7f;
    return torchFile(random, () => Buffer.concat([op.proto(2), Buffer.from([opcode[0]]), length, op.stop]), {});
  },
  'view past its storage': (random) => torchFile(random, (legacy) => tensorDictPickle([view(random.pick([
    { offset: 1 + random.below(1000), shape: [16], stride: [1] }, { stride: [5 + random.below(100), 1] },
    { numel: 2 ** 40 }, { shape: [2 ** 20, 2 ** 20], stride: [0, 0] }]))], { legacy })),
  'storage size mismatch': (random) => torchFile(random, (legacy) => tensorDictPickle(
    [view({ numel: random.pick([15, 17, 1000]), shape: [4], stride: [1] })], { legacy })),
  'many views of one storage': (random) => torchFile(random, (legacy) => tensorDictPickle(
    Array.from({ length: 200 + random.below(200) }, (_, index) => view({ name: `v${index}`, numel: 4096, shape: [4096] })),
    { legacy }), { 0: Buffer.alloc(4096 * 4) }),
  'zip records out of range': (random) => buildTorchZip(tensorDictPickle([view({})]), { 0: storage }, random.pick([
    { directoryOffset: 0xfffffff0 }, { count: 0xffff }, { directorySize: 0xfffffff0 },
    { localOffset: (name, offset) => (name.endsWith('/0') ? 0x7ffffff0 : offset) }, { method: 8 }])),
  'legacy count mismatch': (random) => buildTorchLegacy(tensorDictPickle([view({})], { legacy: true }),
    [{ key: '0', bytes: storage, count: random.pick([0, 15, 17, 2 ** 40, 2 ** 63]) }]),
};

function outcomeOf(error) {
  if (error?.name === 'VideoRNNError' && (error.code === 'E_WEIGHTS_FORMAT' || error.code === 'E_WEIGHTS_SHAPE')) return error.code;
  return 'unexpected';
}

export async function fuzzWeights({ cases = 10_000, seed = 1 } = {}) {
  const work = temporaryDirectory('fuzz');
  try {
    const manifest = generate('small', work);
    const corpus = Object.keys(manifest.files).map((name) => ({
      name, bytes: readFileSync(join(work, name)), safetensors: name.endsWith('.safetensors'),
    }));
    const random = generator(seed);
    const target = join(work, 'case');
    // What the hostile pickles would create, were anything in them run.
    const marker = join(work, 'executed');
    const counts = { ok: 0, E_WEIGHTS_FORMAT: 0, E_WEIGHTS_SHAPE: 0, unexpected: 0 };
    const byStrategy = {};
    const failures = [];
    let slowestMs = 0;
    for (let index = 0; index < cases; index++) {
      const choice = random.next();
      let mutation;
      let hostile = false;
      let safetensors;
      if (choice < 0.3) {
        const name = random.pick(Object.keys(HOSTILE));
        mutation = { strategy: name, bytes: HOSTILE[name](random, marker) };
        hostile = true;
        safetensors = SAFETENSORS_HOSTILE.has(name);
      } else {
        const base = random.pick(corpus);
        mutation = base.safetensors && choice < 0.4 ? mutateHeader(random, base.bytes) : mutateBytes(random, base.bytes);
        safetensors = base.safetensors;
      }
      writeFileSync(target, mutation.bytes);
      // Mostly the reader meant for the file, the auto-detecting loader as often, now and then the wrong one.
      const own = safetensors ? readSafetensors : readTorchFile;
      const reader = random.next() < 0.05 ? (safetensors ? readTorchFile : readSafetensors)
        : random.pick([own, loadBackboneWeights]);
      const started = performance.now();
      let outcome;
      let failure;
      try {
        await reader(target);
        outcome = hostile ? 'unexpected' : 'ok';
        if (hostile) failure = 'a hostile file was accepted';
      } catch (error) {
        outcome = outcomeOf(error);
        if (outcome === 'unexpected') failure = String(error?.stack ?? error);
      }
      slowestMs = Math.max(slowestMs, performance.now() - started);
      counts[outcome] += 1;
      const tally = (byStrategy[mutation.strategy] ??= { ok: 0, E_WEIGHTS_FORMAT: 0, E_WEIGHTS_SHAPE: 0, unexpected: 0 });
      tally[outcome] += 1;
      if (failure && failures.length < 20) {
        failures.push({ index, strategy: mutation.strategy, reader: reader.name, failure, file: mutation.bytes.toString('base64').slice(0, 4096) });
      }
    }
    return {
      cases, seed, counts, byStrategy, failures, executed: existsSync(marker), slowestCaseMs: Math.round(slowestMs),
      maxResidentMB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    removeDirectory(work);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const cases = Number(process.argv[2] ?? 10_000);
  const seed = Number(process.argv[3] ?? 1);
  const started = performance.now();
  const result = await fuzzWeights({ cases, seed });
  result.seconds = Math.round((performance.now() - started) / 100) / 10;
  const output = join(dirname(fileURLToPath(import.meta.url)), 'results', 'fuzz-weights.json');
  mkdirSync(dirname(output), { recursive: true });
  writeFileSync(output, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify({ cases, seed, counts: result.counts, executed: result.executed, seconds: result.seconds,
    slowestCaseMs: result.slowestCaseMs, maxResidentMB: result.maxResidentMB }));
  if (result.counts.unexpected > 0 || result.executed) {
    console.error(result.failures.slice(0, 3));
    process.exitCode = 1;
  }
}
