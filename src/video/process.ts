/**
 * Starts ffmpeg (through fluent-ffmpeg) for one output, and ffprobe. Besides this module only
 * outputs.ts starts ffmpeg: for several outputs at once, which fluent-ffmpeg cannot pipe.
 * fluent-ffmpeg is archived upstream, so nothing else may import it: replacing it with
 * child_process.spawn means rewriting runFfmpeg and nothing more.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import fluentFfmpeg from 'fluent-ffmpeg';
import { VideoRNNError } from '../errors';
import { tuning } from '../tuning';
import { runRemote, startLauncher } from './launcher';
import { refusalFrom } from './limits';
import {
  type OutputTimeLimit, type ProcessLimits, StderrTail, Supervisor, keptStderrLines, lastLine, lowerPriority,
  progressArguments, spawnFailure, startTurn, watchStderrLine,
} from './supervisor';

export { lastLine, type ProcessLimits };

export interface FfmpegJob extends ProcessLimits, OutputTimeLimit {
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
}

export interface FfprobeJob extends ProcessLimits {
  binary: string;
  args: string[];
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
      const progress = progressArguments(job);
      command.output(target)
        .outputOptions(...(job.input !== undefined ? [...job.outputOptions, ...progress]
          : [...job.inputOptions, ...job.outputOptions, ...progress]));
      command.on('start', () => {
        const child = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
        if (child !== undefined) supervisor.attach(child);
        if (child?.pid !== undefined && job.niceness) lowerPriority(child.pid, job.niceness);
      });
      command.on('stderr', (line: string) => watchStderrLine(line, job, stderr, supervisor));
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
