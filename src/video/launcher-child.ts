/**
 * The helper process of launcher.ts: runs each ffmpeg or ffprobe job it is sent with the code of
 * process.ts (or outputs.ts), sends output chunks and the outcome back, and stops a job when asked.
 * When its parent goes (the IPC channel closes), it stops every job and exits once their processes
 * are gone.
 */
import type { LauncherReply, LauncherRequest } from './launcher';
import { runFfmpegOutputsHere } from './outputs';
import { runFfmpegHere, runFfprobeHere } from './process';

// What `ps` and /proc/PID/comm show for it (at most 15 characters there).
process.title = 'video-rnn-ffmpeg';

const running = new Map<number, AbortController>();

function send(reply: LauncherReply): void {
  if (process.connected) process.send?.(reply);
}

process.on('message', (request: LauncherRequest) => {
  if (request.kind === 'stop') {
    running.get(request.id)?.abort();
    return;
  }
  const { id } = request;
  const controller = new AbortController();
  running.set(id, controller);
  const work: Promise<string[] | string> = request.kind === 'ffmpeg'
    ? runFfmpegHere({
      ...request.job,
      output: 'file' in request.job.output ? request.job.output : { onData: (chunk) => send({ id, data: chunk }) },
      signal: controller.signal,
    })
    : request.kind === 'outputs'
      ? runFfmpegOutputsHere({ ...request.job, onData: (output, chunk) => send({ id, data: chunk, output }), signal: controller.signal })
      : runFfprobeHere({ ...request.job, signal: controller.signal });
  work.then(
    (result) => send({ id, result }),
    (error: { code?: unknown; message?: unknown }) => send({ id, error: {
      code: typeof error?.code === 'string' && error.code.startsWith('E_') ? error.code : 'E_VIDEO_DECODE',
      message: String(error?.message ?? error),
    } }),
  ).finally(() => running.delete(id));
});

process.on('disconnect', () => {
  for (const controller of running.values()) controller.abort();
  const exitWhenIdle = (): void => {
    if (running.size === 0) process.exit(0);
    setTimeout(exitWhenIdle, 10);
  };
  exitWhenIdle();
});
