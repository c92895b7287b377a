// `train --nproc N` / `fine-tune --nproc N`: this process becomes a launcher. It starts N copies of the
// same command as worker processes, each one rank of a data-parallel group, through the standard
// environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) that the library reads, like
// torchrun does. With --nnodes M and --node-rank R, M machines run N workers each.
import { ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import type { DistributedOptions } from '../distributed';
import { VideoRNNError } from '../errors';
import { freePort } from '../free-port';
import type { Device } from '../options';
import { exitCodes } from './errors';

/** The options addParallelOptions declares. */
export interface ParallelFlags {
  threads?: number;
  nproc?: number;
  nnodes: number;
  nodeRank: number;
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  distBackend?: 'gloo' | 'nccl';
  iface?: string;
  distTimeout?: number;
}

/** The launcher's end: its workers have printed their own errors, so only the exit code is left. */
export class WorkersExited extends Error {
  constructor(readonly exitCode: number) {
    super(`a worker exited with ${exitCode}`);
  }
}

/** Whether this invocation launches workers rather than training itself. */
export function launches(flags: ParallelFlags): boolean {
  return flags.nproc !== undefined && (flags.nproc > 1 || flags.nnodes > 1);
}

/** With one GPU per worker, `--device cuda` means this worker's own GPU, cuda:LOCAL_RANK. */
export function workerDevice(device: Device, env: NodeJS.ProcessEnv = process.env): Device {
  const local = Number(env.LOCAL_RANK);
  return device === 'cuda' && Number.isInteger(local) && Number(env.WORLD_SIZE ?? 1) > 1 ? `cuda:${local}` : device;
}

/**
 * The distributed option of one worker: the command-line flags where given, else the launcher
 * environment (RANK, WORLD_SIZE, ...) that the library reads by itself; undefined when alone.
 */
export function distributedFrom(flags: ParallelFlags, device: string,
  env: NodeJS.ProcessEnv = process.env): DistributedOptions | undefined {
  const worldSize = flags.worldSize ?? (env.WORLD_SIZE ? Number(env.WORLD_SIZE) : undefined);
  if (flags.rank !== undefined && flags.worldSize === undefined && !env.WORLD_SIZE) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', '--rank needs --world-size (or WORLD_SIZE)');
  }
  if (worldSize === undefined || worldSize <= 1) return undefined;
  const options: DistributedOptions = {};
  if (flags.rank !== undefined) options.rank = flags.rank;
  if (flags.worldSize !== undefined) options.worldSize = flags.worldSize;
  if (flags.masterAddr !== undefined) options.masterAddr = flags.masterAddr;
  if (flags.masterPort !== undefined) options.masterPort = flags.masterPort;
  if (flags.iface !== undefined) options.iface = flags.iface;
  if (flags.distTimeout !== undefined) options.timeoutMs = Math.ceil(flags.distTimeout * 1000);
  // NCCL is the collective library for CUDA tensors; Gloo for everything on the CPU.
  options.backend = flags.distBackend ?? (device.startsWith('cuda') ? 'nccl' : 'gloo');
  return options;
}

/** Options only the launcher reads; the workers get the environment instead. */
const launcherOptions = ['--nproc', '--nnodes', '--node-rank', '--master-addr', '--master-port', '--rank', '--world-size', '--threads'];

/** argv without the launcher's own options, in both `--name value` and `--name=value` forms. */
export function workerArguments(argv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const word = argv[index];
    if (word === '--') {
      kept.push(...argv.slice(index));
      break;
    }
    const name = word.split('=')[0];
    if (!launcherOptions.includes(name)) {
      kept.push(word);
    } else if (!word.includes('=')) {
      index += 1;
    }
  }
  return kept;
}

/** Lines of a worker's stream, prefixed with its rank. */
function prefixLines(stream: NodeJS.ReadableStream, rank: number, into: NodeJS.WritableStream): void {
  let pending = '';
  stream.setEncoding?.('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) into.write(`[rank ${rank}] ${line}\n`);
  });
  stream.on('end', () => {
    if (pending) into.write(`[rank ${rank}] ${pending}\n`);
  });
}

/**
 * Runs the workers and resolves with the exit code of the run: the first failure's, else 0.
 * The local rank 0 of node 0 (global rank 0) writes the model and prints the results; the others'
 * standard error is shown with a rank prefix. Ctrl-C is passed to every worker once (they run in their
 * own process groups), so all of them stop at the same step; a second Ctrl-C kills them.
 */
export async function launchWorkers(argv: readonly string[], flags: ParallelFlags): Promise<number> {
  const nproc = flags.nproc ?? 1;
  if (flags.rank !== undefined || flags.worldSize !== undefined) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', '--nproc starts its own ranks: use --nnodes and --node-rank with it, not --rank or --world-size');
  }
  if (flags.nodeRank >= flags.nnodes) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', `--node-rank ${flags.nodeRank} must be below --nnodes ${flags.nnodes}`);
  }
  if (flags.nnodes > 1 && (flags.masterAddr === undefined || flags.masterPort === undefined)) {
    throw new VideoRNNError('E_INVALID_ARGUMENT', 'with --nnodes above 1, every machine needs the same --master-addr and --master-port (those of node 0)');
  }
  const masterAddr = flags.masterAddr ?? '127.0.0.1';
  const masterPort = flags.masterPort ?? await freePort(masterAddr);
  const worldSize = flags.nnodes * nproc;
  // The cores are shared by the local workers, unless the user chose.
  const threads = flags.threads ?? Math.max(1, Math.floor(os.availableParallelism() / nproc));
  const args = [...workerArguments(argv.slice(1)), '--threads', String(threads)];
  const workers: ChildProcess[] = [];
  const exits: Promise<number>[] = [];
  for (let local = 0; local < nproc; local += 1) {
    const rank = flags.nodeRank * nproc + local;
    const env = { ...process.env, RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(nproc), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort) };
    const leader = rank === 0;
    const child = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', leader ? 'inherit' : 'ignore', leader ? 'inherit' : 'pipe'] });
    if (!leader && child.stderr) prefixLines(child.stderr, rank, process.stderr);
    workers.push(child);
    exits.push(new Promise((resolve) => {
      child.once('error', () => resolve(exitCodes.failure));
      child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? exitCodes.interrupted : exitCodes.failure)));
    }));
  }
  let interrupts = 0;
  const forward = (signal: NodeJS.Signals): void => {
    interrupts += 1;
    for (const child of workers) {
      if (child.exitCode === null && child.signalCode === null) child.kill(interrupts > 1 ? 'SIGKILL' : signal);
    }
  };
  const killAll = (): void => {
    for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  process.on('exit', killAll);
  try {
    const codes = await Promise.all(exits);
    return codes.find((code) => code !== exitCodes.ok) ?? exitCodes.ok;
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    process.off('exit', killAll);
  }
}
