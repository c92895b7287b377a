/**
 * The only module that starts ffmpeg or ffprobe. fluent-ffmpeg is archived upstream, so nothing else
 * may import it: replacing it with child_process.spawn means rewriting runFfmpeg and nothing more.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { Writable } from 'node:stream';
import fluentFfmpeg from 'fluent-ffmpeg';
import { VideoRNNError } from '../errors';
import { tuning } from '../tuning';
import { onAbort } from './abort';
import { runRemote, startLauncher } from './launcher';
import { refusalFrom } from './limits';

export interface ProcessLimits {
  signal?: AbortSignal;
  timeoutMs: number;
  /** Names the work in error messages, e.g. `Decoding "clip.mp4"`. */
  what: string;
  /** The working folder relative names resolve against; this process's by default. */
  cwd?: string;
}

export interface FfmpegJob extends ProcessLimits {
  binary: string;
  /**
   * A file (prefix it with `file:`), passed as one argv element, never through a shell. Absent for a
   * job whose frames come from source filters in `-filter_complex` (synthetic clips): ffmpeg then needs
   * no input, and no `-f lavfi`, whose check in fluent-ffmpeg misreads ffmpeg 7's `-formats` table.
   */
  input?: string;
  inputOptions: string[];
  outputOptions: string[];
  /** A file to write, or a consumer of stdout chunks (`pipe:1`). May throw to stop ffmpeg. */
  output: { file: string } | { onData: (chunk: Buffer) => void };
  /** Scheduling niceness for the process (0: as this process), set right after it starts. */
  niceness?: number;
  /**
   * Stops ffmpeg with E_VIDEO_DECODE once its output's timestamps pass this many seconds, read from
   * its `-progress` reports (twice a second, and once at the end): decoded time, not the header's.
   */
  maxOutputSeconds?: number;
  /** Names the option that maxOutputSeconds comes from, for the error message. */
  maxOutputReason?: string;
}

export interface FfprobeJob extends ProcessLimits {
  binary: string;
  args: string[];
}

const keptStderrLines = 20;

/** The last lines of a process's stderr: the error that matters is at the end, and the rest may be megabytes. */
class StderrTail {
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

function seconds(milliseconds: number): string {
  return `${Number((milliseconds / 1000).toFixed(3))} s`;
}

/**
 * Abort and timeout both end in SIGKILL: a decoder stuck on a corrupt file does not react to SIGTERM
 * reliably, and nothing it would flush on exit is wanted.
 */
class Supervisor {
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
function lowerPriority(pid: number, niceness: number): void {
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

function startTurn(): Promise<void> {
  const turn = lastStartTurn.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  lastStartTurn = turn;
  return turn;
}

function spawnFailure(binary: string, error: Error): VideoRNNError | null {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'EACCES' || /Cannot find ffmpeg/.test(error.message)) {
    return new VideoRNNError('E_NO_FFMPEG', `Cannot run ${binary}: ${error.message}`, { cause: error });
  }
  return null;
}

/**
 * Runs ffmpeg through fluent-ffmpeg; resolves with the tail of its stderr. Started by the helper
 * process of launcher.ts (unless VIDEO_RNN_TUNING has launcher=0), which runs runFfmpegHere.
 */
export function runFfmpeg(job: FfmpegJob): Promise<string[]> {
  if (!tuning().launcher) return runFfmpegHere(job);
  const { signal, output, ...rest } = job;
  return runRemote<string[]>({ kind: 'ffmpeg', job: { ...rest, cwd: job.cwd ?? process.cwd(), output: 'file' in output ? output : { pipe: true } } },
    signal, 'onData' in output ? output.onData : undefined);
}

/** Runs ffprobe (runFfprobeHere), from the helper process unless VIDEO_RNN_TUNING has launcher=0. */
export function runFfprobe(job: FfprobeJob): Promise<string> {
  if (!tuning().launcher) return runFfprobeHere(job);
  const { signal, ...rest } = job;
  return runRemote<string>({ kind: 'ffprobe', job: { ...rest, cwd: job.cwd ?? process.cwd() } }, signal);
}

/** Starts the helper process now, while this process is small (before a model's weights exist). */
export function prepareProcessStarts(): void {
  if (tuning().launcher) startLauncher();
}

export function runFfmpegHere(job: FfmpegJob): Promise<string[]> {
  const stderr = new StderrTail();
  const supervisor = new Supervisor(job, stderr, 'ffmpeg');
  return new Promise<string[]>((resolve, reject) => {
    let outputError: unknown = null;
    let outputFinished = !('onData' in job.output);
    let commandResult: { error: Error | null } | null = null;
    let settling = false;

    const settle = (): void => {
      if (settling || commandResult === null) return;
      if (commandResult.error === null && !outputFinished && supervisor.stopError === null) return;
      settling = true;
      void supervisor.exited().then(() => {
        supervisor.dispose();
        const lines = stderr.finish();
        const failure = commandResult?.error ?? null;
        if (supervisor.stopError !== null) return reject(supervisor.stopError);
        if (outputError instanceof VideoRNNError) return reject(outputError);
        if (failure === null && outputError === null) return resolve(lines);
        const cause = failure ?? outputError;
        const message = cause instanceof Error ? cause.message : String(cause);
        const missing = cause instanceof Error ? spawnFailure(job.binary, cause) : null;
        if (missing !== null) return reject(missing);
        const refusal = refusalFrom(lines, job.what);
        if (refusal !== null) return reject(refusal);
        const exit = /ffmpeg exited with code (\d+)/.exec(message);
        const reason = exit !== null ? `ffmpeg exited with code ${exit[1]}` : message.split('\n')[0];
        reject(new VideoRNNError('E_VIDEO_DECODE', `${job.what} failed (${reason}): ${lastLine(lines)}`,
          { cause }));
      });
    };
    supervisor.onStop = settle;

    let target: string | Writable;
    if ('onData' in job.output) {
      const consume = job.output.onData;
      // emitClose: false because fluent-ffmpeg reports a closed output stream as an error when
      // 'close' arrives before the process's 'exit' event, which happens under load.
      target = new Writable({
        emitClose: false,
        write(chunk: Buffer, _encoding, callback) {
          try {
            consume(chunk);
            callback();
          } catch (error) {
            outputError = error;
            callback(error as Error);
          }
        },
      });
      target.once('finish', () => { outputFinished = true; settle(); });
      target.on('error', () => { /* reported through fluent-ffmpeg's 'error' event */ });
    } else {
      target = job.output.file;
    }

    let command: ReturnType<typeof fluentFfmpeg>;
    try {
      command = fluentFfmpeg({ stdoutLines: keptStderrLines, cwd: job.cwd }).setFfmpegPath(job.binary);
      // Spread arguments (every list here has two or more): given one array, fluent-ffmpeg splits
      // any element that holds a single space into two arguments.
      // With no input, the global options lead the output's.
      if (job.input !== undefined) command.input(job.input).inputOptions(...job.inputOptions);
      // Progress reports (key=value lines) share stderr with errors; the handler above tells them apart.
      const progress = job.maxOutputSeconds === undefined ? [] : ['-progress', 'pipe:2', '-stats_period', '0.5'];
      command.output(target)
        .outputOptions(...(job.input !== undefined ? [...job.outputOptions, ...progress]
          : [...job.inputOptions, ...job.outputOptions, ...progress]));
      command.on('start', () => {
        const child = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
        if (child !== undefined) supervisor.attach(child);
        if (child?.pid !== undefined && job.niceness) lowerPriority(child.pid, job.niceness);
      });
      command.on('stderr', (line: string) => {
        const report = /^([a-z_0-9]+)=(\S*)$/.exec(line.trim());
        if (report === null || job.maxOutputSeconds === undefined) return stderr.pushLine(line);
        if (report[1] !== 'out_time_us' || job.maxOutputSeconds === undefined || !/^\d+$/.test(report[2])) return;
        const seconds = Number(report[2]) / 1e6;
        if (seconds > job.maxOutputSeconds) {
          supervisor.stop(new VideoRNNError('E_VIDEO_DECODE', `${job.what}: refused: the decoded video runs past ` +
            `${seconds.toFixed(1)} s, longer than allowed (${job.maxOutputReason ?? 'maxVideoSeconds'})`));
        }
      });
      command.on('error', (error: Error) => { commandResult ??= { error }; settle(); });
      command.on('end', () => { commandResult ??= { error: null }; settle(); });
    } catch (error) {
      supervisor.dispose();
      reject(error instanceof VideoRNNError ? error
        : new VideoRNNError('E_VIDEO_DECODE', `${job.what} could not start ffmpeg: ${String(error)}`, { cause: error }));
      return;
    }
    void startTurn().then(() => {
      try {
        // Aborted or timed out while waiting for its turn: never started.
        if (supervisor.stopError !== null) throw supervisor.stopError;
        command.run();
      } catch (error) {
        supervisor.dispose();
        reject(error instanceof VideoRNNError ? error
          : new VideoRNNError('E_VIDEO_DECODE', `${job.what} could not start ffmpeg: ${String(error)}`, { cause: error }));
      }
    });
  });
}

/**
 * Runs ffprobe with child_process directly: fluent-ffmpeg's ffprobe() gives no handle on the process,
 * so a probe of a corrupt file or a FIFO could neither time out nor be aborted.
 */
export async function runFfprobeHere(job: FfprobeJob): Promise<string> {
  await startTurn();
  const stderr = new StderrTail();
  const supervisor = new Supervisor(job, stderr, 'ffprobe');
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let spawnError: Error | null = null;
    let settled = false;
    let child: ChildProcess;
    try {
      child = spawn(job.binary, job.args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, cwd: job.cwd });
    } catch (error) {
      supervisor.dispose();
      reject(spawnFailure(job.binary, error as Error) ??
        new VideoRNNError('E_VIDEO_DECODE', `${job.what} could not start ffprobe: ${String(error)}`, { cause: error }));
      return;
    }
    supervisor.attach(child);
    child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => stderr.pushText(text));
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      supervisor.dispose();
      const lines = stderr.finish();
      if (supervisor.stopError !== null) return reject(supervisor.stopError);
      if (spawnError !== null) {
        return reject(spawnFailure(job.binary, spawnError) ??
          new VideoRNNError('E_VIDEO_DECODE', `${job.what} failed: ${spawnError.message}`, { cause: spawnError }));
      }
      if (code !== 0) {
        const refusal = refusalFrom(lines, job.what);
        if (refusal !== null) return reject(refusal);
        const reason = signal !== null ? `ffprobe was killed by ${signal}` : `ffprobe exited with code ${code}`;
        return reject(new VideoRNNError('E_VIDEO_DECODE', `${job.what} failed (${reason}): ${lastLine(lines)}`));
      }
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    child.on('error', (error) => {
      spawnError ??= error;
      // A binary that failed to start never emits 'close'.
      if (child.pid === undefined) finish(null, null);
    });
    child.on('close', finish);
  });
}
