/**
 * Starting a process from this one is a fork() of everything it holds, on the JavaScript thread:
 * with a VGG16 loaded (about 1 GB) each ffmpeg or ffprobe start held the event loop for 15 to 75 ms
 * (bench/results/event-loop-trace.json). One small helper process, started before the model's
 * memory exists, starts them instead (src/video/launcher-child.ts runs the same code of
 * process.ts there) and sends their output back over its IPC channel; this process only writes
 * and reads messages. VIDEO_RNN_TUNING=launcher=0 starts them from this process again.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { VideoRNNError } from '../errors';
import { onAbort } from './abort';

/** What crosses to the helper: a job without its signal and callbacks, plus the working folder. */
interface RemoteJob {
  binary: string;
  timeoutMs: number;
  what: string;
  cwd: string;
}

/** An ffmpeg job's niceness and its bound on decoded time. */
interface RemoteFfmpegLimits extends RemoteJob {
  niceness?: number;
  maxOutputSeconds?: number;
  maxOutputReason?: string;
}

export interface RemoteFfmpegJob extends RemoteFfmpegLimits {
  input?: string;
  inputOptions: string[];
  outputOptions: string[];
  output: { file: string } | { pipe: true };
}

export interface RemoteFfprobeJob extends RemoteJob {
  args: string[];
}

/** Several outputs, each to a pipe of its own (outputs.ts). */
export interface RemoteOutputsJob extends RemoteFfmpegLimits {
  args: string[];
  outputs: number;
}

export type LauncherRequest =
  | { kind: 'ffmpeg'; id: number; job: RemoteFfmpegJob }
  | { kind: 'outputs'; id: number; job: RemoteOutputsJob }
  | { kind: 'ffprobe'; id: number; job: RemoteFfprobeJob }
  | { kind: 'stop'; id: number };

export type LauncherReply =
  | { id: number; data: Uint8Array; output?: number }
  | { id: number; result: string[] | string }
  | { id: number; error: { code: string; message: string } };

interface Pending {
  what: string;
  onData?: (chunk: Uint8Array, output: number) => void;
  settle: (error: unknown, result?: unknown) => void;
}

interface Helper {
  child: ChildProcess;
  pending: Map<number, Pending>;
}

let helper: Helper | null = null;
let nextId = 1;

function start(): Helper {
  const child = fork(path.join(__dirname, 'launcher-child.js'), [], {
    serialization: 'advanced',
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const state: Helper = { child, pending: new Map() };
  child.on('message', (reply: LauncherReply) => {
    const pending = state.pending.get(reply.id);
    if (pending === undefined) return;
    if ('data' in reply) pending.onData?.(reply.data, reply.output ?? 0);
    else if ('result' in reply) pending.settle(null, reply.result);
    else pending.settle(new VideoRNNError(reply.error.code as VideoRNNError['code'], reply.error.message));
  });
  const lost = (why: string): void => {
    if (helper === state) helper = null;
    const jobs = [...state.pending.values()];
    state.pending.clear();
    for (const job of jobs) job.settle(new VideoRNNError('E_VIDEO_DECODE', `${job.what} failed: the helper process that starts ffmpeg ${why}`));
  };
  child.on('exit', (code, signal) => lost(`exited (${signal ?? `code ${code}`})`));
  child.on('error', (error) => lost(`failed: ${error.message}`));
  idle(state, true);
  helper = state;
  return state;
}

/**
 * Idle, the helper keeps nothing alive: this process may exit, and the helper follows (disconnect).
 * With jobs, both the channel and the process are referenced, so that the helper's exit is seen.
 */
function idle(state: Helper, yes: boolean): void {
  if (yes) {
    state.child.unref();
    state.child.channel?.unref();
  } else {
    state.child.ref();
    state.child.channel?.ref();
  }
}

/** Starts the helper now, while this process is small; later jobs reuse it. */
export function startLauncher(): void {
  if (helper === null) start();
}

/**
 * Runs a job in the helper. An abort, or `onData` throwing, stops the job there; the Promise settles
 * once the helper reports the process gone, with the abort or the consumer's error.
 */
export function runRemote<T>(
  request: { kind: 'ffmpeg'; job: RemoteFfmpegJob } | { kind: 'outputs'; job: RemoteOutputsJob } | { kind: 'ffprobe'; job: RemoteFfprobeJob },
  signal: AbortSignal | undefined, onData?: (chunk: Buffer, output: number) => void): Promise<T> {
  const state = helper ?? start();
  const id = nextId++;
  const what = request.job.what;
  return new Promise<T>((resolve, reject) => {
    let stoppedBy: unknown = null;
    let unsubscribe = (): void => undefined;
    const stop = (reason: unknown): void => {
      if (stoppedBy !== null) return;
      stoppedBy = reason;
      if (state.child.connected) state.child.send({ kind: 'stop', id } satisfies LauncherRequest);
    };
    state.pending.set(id, {
      what,
      onData: onData && ((chunk, output) => {
        if (stoppedBy !== null) return;
        try {
          onData(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), output);
        } catch (error) {
          stop(error);
        }
      }),
      settle: (error, result) => {
        unsubscribe();
        state.pending.delete(id);
        if (state.pending.size === 0) idle(state, true);
        if (stoppedBy instanceof VideoRNNError) return reject(stoppedBy);
        if (stoppedBy !== null) {
          return reject(new VideoRNNError('E_VIDEO_DECODE', `${what} failed: ${(stoppedBy as Error)?.message ?? String(stoppedBy)}`, { cause: stoppedBy }));
        }
        if (error !== null) return reject(error);
        resolve(result as T);
      },
    });
    if (state.pending.size === 1) idle(state, false);
    try {
      state.child.send({ ...request, id } as LauncherRequest);
    } catch (error) {
      state.pending.get(id)?.settle(new VideoRNNError('E_VIDEO_DECODE', `${what} could not reach the helper process: ${(error as Error).message}`, { cause: error }));
      return;
    }
    unsubscribe = onAbort(signal, () => stop(new VideoRNNError('E_ABORTED', `${what} was aborted`, { cause: signal?.reason })));
  });
}
