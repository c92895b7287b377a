// What the benchmark scripts share: arguments, statistics, the two sides (our worker process and the
// Python reference process) and the machine description that goes into every results file.
import { execFileSync, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const benchFolder = path.dirname(fileURLToPath(import.meta.url));
export const repositoryRoot = path.dirname(benchFolder);

/** `--name value` from the command line, as a number when the fallback is one. */
export function argument(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = process.argv[index + 1];
  return typeof fallback === 'number' ? Number(value) : value;
}

export function flag(name) {
  return process.argv.includes(`--${name}`);
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function round(value, digits = 3) {
  return value === null || value === undefined || !Number.isFinite(value) ? value : Number(value.toFixed(digits));
}

/** Writes one measurement's results where bench/run collects them. */
export function writeResults(name, results) {
  const output = argument('out', path.join(benchFolder, 'results', `${name}.json`));
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(output, JSON.stringify(results, null, 2) + '\n');
  console.log(`${name}: written to ${output}`);
}

/** The fixture bench/setup.mjs rendered: datasets, the checkpoint both sides load, the frame files. */
export function readFixture() {
  const work = argument('work', null);
  if (!work) throw new Error('--work FOLDER is required (bench/run creates it with bench/setup.mjs)');
  return JSON.parse(fs.readFileSync(path.join(work, 'fixture.json'), 'utf8'));
}

export function loadAverage() {
  return round(os.loadavg()[0], 2);
}

/** Seconds for `work`, with its result. */
export async function timed(work) {
  const started = performance.now();
  const result = await work();
  return { seconds: (performance.now() - started) / 1000, result };
}

/** A side answers one JSON request at a time; its timings are taken inside it, around the work only. */
class Side {
  constructor(name, child, send) {
    this.name = name;
    this.child = child;
    this.send = send;
    this.pending = [];
    this.stderr = [];
    child.stderr?.on('data', (chunk) => {
      this.stderr.push(chunk.toString());
      if (this.stderr.length > 50) this.stderr.shift();
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.splice(0)) {
        waiter.reject(new Error(`${name} exited (${code ?? signal}):\n${this.stderr.join('').slice(-4000)}`));
      }
    });
  }

  answered(message) {
    const waiter = this.pending.shift();
    if (!waiter) return;
    if (message && message.error) waiter.reject(new Error(`${this.name}: ${message.error}\n${this.stderr.join('').slice(-2000)}`));
    else waiter.resolve(message);
  }

  request(message) {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.send(message);
    });
  }

  async close() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.send({ op: 'quit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

export const python = process.env.BENCH_PYTHON ?? '/usr/bin/python3';

/** The Python reference (bench/reference/server.py), started once and kept for every round. */
export async function startReference({ threads = os.availableParallelism(), ffmpeg = 'ffmpeg', env = {} } = {}) {
  const script = path.join(benchFolder, 'reference', 'server.py');
  const child = spawn(python, [script, '--threads', String(threads), '--ffmpeg', ffmpeg],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let side;
  const ready = new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    let first = true;
    lines.on('line', (line) => {
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        process.stderr.write(`reference: ${line}\n`);
        return;
      }
      if (first) {
        first = false;
        resolve();
      } else {
        side.answered(message);
      }
    });
    child.once('exit', (code) => reject(new Error(`the reference exited with ${code} before it was ready:\n${side.stderr.join('')}`)));
  });
  side = new Side('reference', child, (message) => child.stdin.write(JSON.stringify(message) + '\n'));
  await ready;
  return side;
}

/**
 * Our side in its own Node process (bench/worker.mjs), so that its peak memory, its event loop and
 * its environment (OpenBLAS settings are read once, when the addon loads) are its own.
 */
export async function startOurs({ env = {}, name = 'ours' } = {}) {
  const child = fork(path.join(benchFolder, 'worker.mjs'), [],
    { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env: { ...process.env, ...env } });
  let side;
  const ready = new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready:\n${side.stderr.join('')}`)));
  });
  side = new Side(name, child, (message) => child.send(message));
  await ready;
  child.on('message', (message) => side.answered(message));
  return side;
}

/** The largest element-wise difference between two float32 files. */
export function maxDifference(fileA, fileB) {
  const a = new Float32Array(fs.readFileSync(fileA).buffer.slice(0));
  const b = new Float32Array(fs.readFileSync(fileB).buffer.slice(0));
  if (a.length !== b.length) throw new Error(`${fileA} and ${fileB} differ in length`);
  let largest = 0;
  for (let index = 0; index < a.length; index += 1) largest = Math.max(largest, Math.abs(a[index] - b[index]));
  return largest;
}

export function maxRowDifference(rowsA, rowsB) {
  let largest = 0;
  rowsA.forEach((row, index) => row.forEach((value, column) => {
    largest = Math.max(largest, Math.abs(value - rowsB[index][column]));
  }));
  return largest;
}

/** What ran where: the same description heads every results file. */
/** The CPU's family and model, and which of the vector flags that pick our kernels and oneDNN's it has (Linux). */
function cpuFeatures() {
  const wanted = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_bf16', 'amx_bf16', 'amx_tile'];
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1] ?? null;
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    return { family: field('cpu family'), model: field('model'), flags: wanted.filter((flag) => flags.has(flag)) };
  } catch {
    return null;
  }
}

export function machine() {
  let ffmpeg = null;
  try {
    ffmpeg = execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0];
  } catch { /* reported as null */ }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpuFeatures: cpuFeatures(),
    cores: os.availableParallelism(),
    memoryGB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    ffmpeg,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** Runs `node file` with extra environment; resolves with { code, stdout, stderr } (stderr is echoed). */
export function runNode(file, env) {
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; process.stderr.write(chunk); });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** A clip of seeded noise in the raw { data, frames, height, width } form that training accepts. */
export function noiseClip(frames, size, seed) {
  const data = new Uint8Array(frames * size * size * 3);
  let state = seed >>> 0;
  for (let i = 0; i < data.length; i += 1) { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; data[i] = state >>> 24; }
  return { data, frames, height: size, width: size };
}
