// Runs the built command line as a real child process (no shell) and collects what it printed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSyntheticDataset } from '../dist/index.js';

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const cliPath = path.join(repositoryRoot, 'dist', 'cli.js');

/**
 * Starts `node dist/cli.js ...args` (after `options.prefix`, a command that runs it, such as
 * `ip netns exec NAME`); `finished` resolves with { code, signal, stdout, stderr }.
 */
export function startCli(args, options = {}) {
  const [command, ...lead] = [...(options.prefix ?? []), process.execPath];
  const child = spawn(command, [...lead, cliPath, ...args], {
    cwd: options.cwd ?? repositoryRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text) => { stdout += text; });
  child.stderr.setEncoding('utf8').on('data', (text) => { stderr += text; });
  const timeout = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const finished = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, finished };
}

export function runCli(args, options) {
  return startCli(args, options).finished;
}

/** The JSON object a `--json` run printed; fails with the run's output when there is none. */
export function parseJson(result) {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`expected JSON on stdout (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

/** Lines on stderr, without the warning that a random-init backbone is used (expected in these tests). */
export function errorLines(result) {
  return result.stderr.split('\n').filter((line) => line.length > 0 && !line.startsWith('video-rnn: warning:'));
}

/** Two classes of four small clips: enough for the command line's plumbing, seconds to train. */
export function tinyDataset(folder, seed = 11) {
  return makeSyntheticDataset(folder, { classes: ['left', 'right'], perClass: 4, size: 32, minFrames: 4, maxFrames: 6, seed });
}

/** Options for a model small enough that a test trains it in seconds. */
export const tinyModel = ['--hidden-size', '16', '--head-size', '16', '--frame-size', '32', '--batch-size', '4'];
