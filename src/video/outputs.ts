/**
 * Runs one ffmpeg process that writes several outputs at once, each to a pipe of its own
 * (`pipe:3`, `pipe:4`, ...): how several videos decode in one process start (group.ts).
 * fluent-ffmpeg pipes stdout only, so this starts ffmpeg with child_process itself; the limits are
 * those of process.ts (supervisor.ts): timeout, abort, niceness, decoded time, stderr's tail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { VideoRNNError } from '../errors';
import { tuning } from '../tuning';
import { runRemote } from './launcher';
import { refusalFrom } from './limits';
import {
  type OutputTimeLimit, type ProcessLimits, StderrTail, Supervisor, lastLine, lowerPriority, progressArguments,
  spawnFailure, startTurn, watchStderrLine,
} from './supervisor';

/** The file descriptor of the first output; ffmpeg writes output k to `pipe:${firstOutputFd + k}`. */
export const firstOutputFd = 3;

export interface FfmpegOutputsJob extends ProcessLimits, OutputTimeLimit {
  binary: string;
  /** The whole command line after the binary, each output written to its `pipe:N`; never a shell. */
  args: string[];
  /** How many outputs (pipes) the arguments name. */
  outputs: number;
  /** Receives output `output`'s bytes; may throw to stop ffmpeg (the run then rejects with that error). */
  onData: (output: number, chunk: Buffer) => void;
  /** Scheduling niceness for the process (0: as this process), set right after it starts. */
  niceness?: number;
}

/** Runs the job from the helper process of launcher.ts, or here with VIDEO_RNN_TUNING launcher=0. */
export function runFfmpegOutputs(job: FfmpegOutputsJob): Promise<string[]> {
  if (!tuning().launcher) return runFfmpegOutputsHere(job);
  const { signal, onData, ...rest } = job;
  return runRemote<string[]>({ kind: 'outputs', job: { ...rest, cwd: job.cwd ?? process.cwd() } }, signal,
    (chunk, output) => onData(output, chunk));
}

function asDecodeError(error: unknown, what: string): VideoRNNError {
  if (error instanceof VideoRNNError) return error;
  return new VideoRNNError('E_VIDEO_DECODE', `${what} failed: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error });
}

/** Resolves with the tail of stderr once ffmpeg exited 0 and every pipe is drained. */
export async function runFfmpegOutputsHere(job: FfmpegOutputsJob): Promise<string[]> {
  await startTurn();
  const stderr = new StderrTail();
  const supervisor = new Supervisor(job, stderr, 'ffmpeg');
  return new Promise<string[]>((resolve, reject) => {
    if (supervisor.stopError !== null) {
      supervisor.dispose();
      return reject(supervisor.stopError);
    }
    let child: ChildProcess;
    try {
      child = spawn(job.binary, [...progressArguments(job), ...job.args], {
        stdio: ['ignore', 'ignore', 'pipe', ...Array.from({ length: job.outputs }, () => 'pipe' as const)],
        windowsHide: true, cwd: job.cwd,
      });
    } catch (error) {
      supervisor.dispose();
      return reject(spawnFailure(job.binary, error as Error) ?? asDecodeError(error, job.what));
    }
    supervisor.attach(child);
    if (child.pid !== undefined && job.niceness) lowerPriority(child.pid, job.niceness);
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      const lines = (partial + text).split(/\r\n|\r|\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) watchStderrLine(line, job, stderr, supervisor);
    });
    for (let output = 0; output < job.outputs; output += 1) {
      child.stdio[firstOutputFd + output]?.on('data', (chunk: Buffer) => {
        if (supervisor.stopError !== null) return;
        try {
          job.onData(output, chunk);
        } catch (error) {
          supervisor.stop(asDecodeError(error, job.what));
        }
      });
    }
    let spawnError: Error | null = null;
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      supervisor.dispose();
      watchStderrLine(partial, job, stderr, supervisor);
      const lines = stderr.finish();
      if (supervisor.stopError !== null) return reject(supervisor.stopError);
      if (spawnError !== null) return reject(spawnFailure(job.binary, spawnError) ?? asDecodeError(spawnError, job.what));
      if (code !== 0) {
        const reason = signal !== null ? `ffmpeg was killed by ${signal}` : `ffmpeg exited with code ${code}`;
        return reject(refusalFrom(lines, job.what) ??
          new VideoRNNError('E_VIDEO_DECODE', `${job.what} failed (${reason}): ${lastLine(lines)}`));
      }
      resolve(lines);
    };
    child.on('error', (error) => {
      spawnError ??= error;
      if (child.pid === undefined) finish(null, null);
    });
    child.on('close', finish);
  });
}
