/**
 * Several videos decoded by one ffmpeg process. Each start of Debian's ffmpeg costs about 0.1 s of
 * CPU (its dynamic linker resolves the symbols of some 200 libraries), as much as decoding a short
 * clip at 112 px. So videos that wait for a process at the same moment share one: each input with
 * its own guards, each output with the filters it would have alone and a pipe of its own
 * (outputs.ts), so every clip is the same bytes as alone. A shared run that shows anything unusual
 * (an error message, a non-zero exit, a timeout, more output than the container index announced)
 * decodes each of its videos again alone: errors, truncation and refusals stay per video, exactly
 * as a process of their own reports them.
 */
import type { Clip } from '../clip';
import { VideoRNNError, throwIfAborted } from '../errors';
import { tuning } from '../tuning';
import { onAbort } from './abort';
import { indexedStream } from './container-index';
import {
  type DecodePlan, acquireAll, decodeAlone, decodePass, decodeRequest, finishDecode, frameSink, outputOptions,
  outputTimeLimit, planDecode, slots, threadOptions, withCallerStack,
} from './decode';
import { inputGuards } from './limits';
import { firstOutputFd, runFfmpegOutputs } from './outputs';
import { ffmpegInput, type VideoStream } from './probe';
import { type DecodeOptions, defaultDecodeTimeout, sourcePixels } from './sampling';
import { Semaphore } from './semaphore';

/** How long a process that could start waits for videos whose container index is still being read. */
const gatherMs = 20;

/**
 * Videos of more source pixels than this decode alone: decoding 50 megapixels (20 s of 320x240 at
 * 30 fps) takes a core several times as long as a process start, so sharing saves them little, and a
 * long video would hold back the short ones it shares a process with until it ends.
 */
const sharedPixelLimit = 50e6;

/** Container indexes read at once: each read holds up to 32 MiB (mp4-index.ts), so their number is bounded. */
const indexSlots = new Semaphore(4);

interface Member {
  plan: DecodePlan;
  settled: boolean;
  settle: (error: unknown, clip?: Clip) => void;
  unsubscribe: () => void;
  /** Set when the caller's signal fires. */
  aborted?: VideoRNNError;
  /** Stops the shared run this video is part of, while it runs with others. */
  run?: { stop: () => void };
}

/** Videos that may share a process: the same binary and the same bound on decoded time. */
function groupKey(plan: DecodePlan): string {
  return `${plan.ffmpeg}\0${plan.limits.maxVideoSeconds}`;
}

/**
 * A video may share a process when its index gives a frame count (the bound on a shared run's
 * output), it is short (sharedPixelLimit), and it keeps within maxClipFrames by that count.
 */
function shareable(plan: DecodePlan): boolean {
  const sampled = plan.settings.frames !== undefined || plan.settings.maxFrames !== undefined;
  return plan.expected !== null && sourcePixels(plan.stream) <= sharedPixelLimit &&
    (sampled || plan.expected <= plan.limits.maxClipFrames);
}

/** One command line for every plan: inputs in order, output k from input k to `pipe:${3 + k}`. */
function sharedArguments(plans: readonly DecodePlan[]): string[] {
  const threads = threadOptions();
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...threads.global];
  for (const plan of plans) args.push(...inputGuards(plan.limits), ...threads.input, '-i', ffmpegInput(plan.file));
  plans.forEach((plan, at) => {
    args.push(...outputOptions(plan, plan.stream.map.replace(/^0:/, `${at}:`)), `pipe:${firstOutputFd + at}`);
  });
  return args;
}

/** Thrown from a shared run's output to end the run; its videos are then decoded alone. */
class SharedRunEnded extends Error {}

/**
 * Decodes videos, sharing ffmpeg processes between those that wait at the same time. Files whose
 * container index gives no frame count (ffprobe answers for them), and calls with their own
 * `timeout`, are decoded alone.
 */
export class VideoDecoder {
  private readonly queue: Member[] = [];
  private preparing = 0;
  private pumping = false;

  /** @param semaphores taken, in order, for each process; the first one's limit divides the waiting videos into groups */
  constructor(private readonly semaphores: readonly Semaphore[] = [slots]) {}

  async decode(path: string, options?: DecodeOptions): Promise<Clip> {
    try {
      const request = await decodeRequest(path, options);
      let stream: VideoStream | null;
      this.preparing += 1;
      try {
        const release = await indexSlots.acquire(request.settings.signal, request.what);
        try {
          stream = await indexedStream(request.file, request.limits, request.settings.signal);
        } finally {
          release();
        }
      } finally {
        this.preparing -= 1;
      }
      throwIfAborted(request.settings.signal, request.what);
      if (stream === null || request.settings.timeout !== undefined || tuning().decodeGroup < 2) {
        return await decodeAlone(request, stream, this.semaphores);
      }
      const plan = planDecode(request, stream);
      return await (shareable(plan) ? this.enqueue(plan) : decodeAlone(request, stream, this.semaphores));
    } catch (error) {
      throw withCallerStack(error);
    }
  }

  private enqueue(plan: DecodePlan): Promise<Clip> {
    return new Promise<Clip>((resolve, reject) => {
      const member: Member = {
        plan, settled: false, unsubscribe: () => undefined,
        settle: (error, clip) => {
          if (member.settled) return;
          member.settled = true;
          member.unsubscribe();
          if (error !== null) reject(error);
          else resolve(clip as Clip);
        },
      };
      member.unsubscribe = onAbort(plan.settings.signal, () => {
        const error = new VideoRNNError('E_ABORTED', `${plan.what} was aborted`, { cause: plan.settings.signal?.reason });
        member.aborted = error;
        const at = this.queue.indexOf(member);
        if (at >= 0) {
          this.queue.splice(at, 1);
          return member.settle(error);
        }
        // Alone, its process stops on the same signal, and the decode rejects once the process is gone.
        // Shared, the process stops too (an input cannot leave a running ffmpeg); the others wait again.
        member.run?.stop();
      });
      if (member.settled) return;
      this.queue.push(member);
      void this.pump();
    });
  }

  /** Takes a slot, then the videos waiting at that moment; one loop at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const release = await acquireAll(this.semaphores, undefined, 'Decoding');
        // A batch's videos arrive together, each after reading its index: the slowest read joins.
        const since = Date.now();
        while (this.preparing > 0 && Date.now() - since < gatherMs) await new Promise((resolve) => setTimeout(resolve, 1));
        const members = this.take();
        if (members.length === 0) release();
        else void this.run(members, release);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The oldest waiting video and those that may join it: the waiting videos spread over the slots. */
  private take(): Member[] {
    const first = this.queue.shift();
    if (first === undefined) return [];
    const size = Math.min(tuning().decodeGroup, Math.ceil((this.queue.length + 1) / this.semaphores[0].limit));
    const members = [first];
    const key = groupKey(first.plan);
    for (let at = 0; at < this.queue.length && members.length < size;) {
      if (groupKey(this.queue[at].plan) === key) members.push(...this.queue.splice(at, 1));
      else at += 1;
    }
    return members;
  }

  private async run(members: Member[], release: () => void): Promise<void> {
    let again: Member[] = [];
    try {
      if (members.length === 1) {
        const [{ plan, settle }] = members;
        try {
          settle(null, finishDecode(plan, await decodePass(plan, defaultDecodeTimeout(plan.stream))));
        } catch (error) {
          settle(error);
        }
      } else {
        again = await this.runShared(members);
      }
    } finally {
      release();
    }
    const requeue: Member[] = [];
    for (const member of again) {
      member.run = undefined;
      if (member.aborted !== undefined) member.settle(member.aborted);
      else if (this.stoppedByAbort(members)) requeue.push(member);
      else {
        decodeAlone(member.plan, member.plan.stream, this.semaphores)
          .then((clip) => member.settle(null, clip), (error: unknown) => member.settle(error));
      }
    }
    if (requeue.length > 0) {
      this.queue.unshift(...requeue);
      void this.pump();
    }
  }

  /** A shared run stopped because one of its videos was aborted: the others did nothing wrong. */
  private stoppedByAbort(members: readonly Member[]): boolean {
    return members.some((member) => member.aborted !== undefined);
  }

  /** Runs one process for every member; returns those to decode again (alone, or queued again after an abort). */
  private async runShared(members: Member[]): Promise<Member[]> {
    const plans = members.map((member) => member.plan);
    const sinks = plans.map(frameSink);
    const received = plans.map(() => 0);
    // Twice the frames the index announced: a wrong index, or a file that lies, ends the shared run,
    // and alone each video meets its own bounds (maxClipFrames, maxVideoSeconds, its timeout).
    const allowed = plans.map((plan) => (2 * (plan.expected ?? 0) + 2) * plan.frameBytes);
    const controller = new AbortController();
    for (const member of members) member.run = { stop: () => controller.abort() };
    const pending = (): Member[] => members.filter((member) => !member.settled);
    let lines: string[];
    try {
      lines = await runFfmpegOutputs({
        binary: plans[0].ffmpeg,
        args: sharedArguments(plans),
        outputs: plans.length,
        onData: (output, chunk) => {
          received[output] += chunk.length;
          if (received[output] > allowed[output]) throw new SharedRunEnded('more frames than the index announced');
          if (!members[output].settled) sinks[output].onData(chunk);
        },
        niceness: tuning().decodeNice,
        signal: controller.signal,
        timeoutMs: defaultDecodeTimeout(...plans.map((plan) => plan.stream)),
        what: `Decoding ${plans.length} videos`,
        ...outputTimeLimit(plans[0].limits),
      });
    } catch {
      return pending();
    }
    // A message cannot be told apart by video: each decodes again alone, where it can.
    if (lines.length > 0) return pending();
    members.forEach((member, at) => {
      if (member.settled) return;
      if (member.aborted !== undefined) return member.settle(member.aborted);
      try {
        member.settle(null, finishDecode(member.plan, { received: sinks[at].framesSeen, clip: sinks[at].result(), stderr: [] }));
      } catch (error) {
        member.settle(error);
      }
    });
    return [];
  }
}

const shared = new VideoDecoder();

/**
 * Decodes a video file into RGB24 frames. Sampling happens in two steps: `fps` (if set) resamples the
 * stream in ffmpeg, then `frames` or `maxFrames` picks evenly spread frames from what that produced,
 * in one pass whatever the container claims (src/video/frames.ts). Videos decoded at the same time
 * may share an ffmpeg process (above).
 */
export function decodeVideo(path: string, options?: DecodeOptions): Promise<Clip> {
  return shared.decode(path, options);
}
