/**
 * What every ffmpeg and ffprobe run shares, whichever module starts it: the tail of stderr, the
 * timeout and abort that kill the process, its niceness, one start per turn of the event loop, and
 * the watch on decoded time from `-progress` reports.
 */
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import { VideoRNNError } from '../errors';
import { onAbort } from './abort';

export interface ProcessLimits {
  signal?: AbortSignal;
  timeoutMs: number;
  /** Names the work in error messages, e.g. `Decoding "clip.mp4"`. */
  what: string;
  /** The working folder relative names resolve against; this process's by default. */
  cwd?: string;
}

export const keptStderrLines = 20;

/** The last lines of a process's stderr: the error that matters is at the end, and the rest may be megabytes. */
export class StderrTail {
  readonly lines: string[] = [];
  private partial = '';

  pushLine(line: string): void {
    const trimmed = line.trim();
    if (trimmed.length === 0) return;
    this.lines.push(trimmed);
    if (this.lines.length > keptStderrLines) this.lines.shift();
  }

  pushText(text: string): void {
    const pieces = (this.partial + text).split(/\r\n|\r|\n/);
    this.partial = pieces.pop() ?? '';
    for (const piece of pieces) this.pushLine(piece);
  }

  finish(): string[] {
    this.pushLine(this.partial);
    this.partial = '';
    return this.lines;
  }
}

export function lastLine(lines: readonly string[]): string {
  return lines.length > 0 ? lines[lines.length - 1] : '(no message)';
}

export function seconds(milliseconds: number): string {
  return `${Number((milliseconds / 1000).toFixed(3))} s`;
}

/**
 * Abort and timeout both end in SIGKILL: a decoder stuck on a corrupt file does not react to SIGTERM
 * reliably, and nothing it would flush on exit is wanted.
 */
export class Supervisor {
  stopError: VideoRNNError | null = null;
  /** Called after a stop, for callers that may already be waiting on something other than the exit. */
  onStop: () => void = () => undefined;
  private child: ChildProcess | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly limits: ProcessLimits, private readonly stderr: StderrTail, binaryName: string) {
    this.timer = setTimeout(() => {
      this.stop(new VideoRNNError('E_VIDEO_DECODE', `${limits.what} timed out after ${seconds(limits.timeoutMs)}; ` +
        `the file may be corrupt or not a regular file. Last ${binaryName} message: ${lastLine(stderr.lines)}`));
    }, limits.timeoutMs);
    this.unsubscribe = onAbort(limits.signal, () => {
      this.stop(new VideoRNNError('E_ABORTED', `${limits.what} was aborted`, { cause: limits.signal?.reason }));
    });
  }

  attach(child: ChildProcess): void {
    this.child = child;
    if (this.stopError !== null) child.kill('SIGKILL');
  }

  stop(error: VideoRNNError): void {
    if (this.stopError === null) this.stopError = error;
    this.child?.kill('SIGKILL');
    this.onStop();
  }

  /** Resolves once the child is gone, so a caller that sees the promise settle sees no process left. */
  async exited(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.pid === undefined) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.unsubscribe();
  }
}

/** A system call (no renice process): decoding then runs in the time the CNN's threads leave. */
export function lowerPriority(pid: number, niceness: number): void {
  try {
    os.setPriority(pid, Math.min(19, os.getPriority(pid) + niceness));
  } catch {
    // The process may already have exited; its priority no longer matters then.
  }
}

// Starting a process holds the event loop for as long as the kernel takes to fork this one (tens of
// milliseconds with a VGG16 loaded; bench/event-loop-trace.mjs). Two starts in one turn of the loop
// add up, so each start waits for a turn of its own.
let lastStartTurn: Promise<void> = Promise.resolve();

export function startTurn(): Promise<void> {
  const turn = lastStartTurn.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  lastStartTurn = turn;
  return turn;
}

export function spawnFailure(binary: string, error: Error): VideoRNNError | null {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'EACCES' || /Cannot find ffmpeg/.test(error.message)) {
    return new VideoRNNError('E_NO_FFMPEG', `Cannot run ${binary}: ${error.message}`, { cause: error });
  }
  return null;
}

/** Where `-progress pipe:2` reports decoded time, and what bounds it. */
export interface OutputTimeLimit {
  maxOutputSeconds?: number;
  /** Names the option that maxOutputSeconds comes from, for the error message. */
  maxOutputReason?: string;
}

/** ffmpeg's arguments that make it report its output time on stderr, when a limit needs them. */
export function progressArguments(limit: OutputTimeLimit): string[] {
  return limit.maxOutputSeconds === undefined ? [] : ['-progress', 'pipe:2', '-stats_period', '0.5'];
}

/**
 * Handles one stderr line: a progress report (key=value) is checked against the limit, and stops
 * the process once decoded time passes it; anything else is kept as a message.
 */
export function watchStderrLine(line: string, limit: OutputTimeLimit & { what: string }, stderr: StderrTail,
  supervisor: Supervisor): void {
  // ffmpeg pads some values ("speed= 186x"): a report is a key, '=', spaces, then one word.
  const report = /^([a-z_0-9]+)= *(\S*)$/.exec(line.trim());
  if (report === null || limit.maxOutputSeconds === undefined) return stderr.pushLine(line);
  if (report[1] !== 'out_time_us' || !/^\d+$/.test(report[2])) return;
  const decoded = Number(report[2]) / 1e6;
  if (decoded > limit.maxOutputSeconds) {
    supervisor.stop(new VideoRNNError('E_VIDEO_DECODE', `${limit.what}: refused: the decoded video runs past ` +
      `${decoded.toFixed(1)} s, longer than allowed (${limit.maxOutputReason ?? 'maxVideoSeconds'})`));
  }
}
