// Dynamic batching for a model that many callers share: each call's inputs are decoded ahead of the
// model (bounded), then clips from different calls run together in one native batch. A batch closes
// when it is full or `maxDelayMs` after its first clip was ready; only one runs at a time, so clips
// that become ready meanwhile fill the next one (as Triton's dynamic batcher does per model instance).
import { EventEmitter } from 'node:events';
import type { Clip } from '../clip';
import { ErrorCode, VideoRNNError, checkInteger, checkString, invalidArgument } from '../errors';
import { VideoInput, checkClip } from '../inputs';
import type { Prediction, VideoRNN } from '../model';
import { VideoDecoder, decodeSlots } from '../video';
import { onAbort } from '../video/abort';
import { Semaphore } from '../video/semaphore';
import { PredictionServiceOptions, ServiceLimits, resolveLimits } from './options';

export interface ServicePredictOptions {
  topK?: number;
  signal?: AbortSignal;
  /** This call's own timeout in milliseconds (default: the service's timeoutMs). */
  timeoutMs?: number;
}

export interface ServiceStats {
  /** Clips accepted and not yet in a running batch: decoding, or decoded and waiting. */
  queued: number;
  /** Videos being decoded, or waiting for an ffmpeg process. */
  decoding: number;
  /** Clips in the batch the model is running now. */
  running: number;
  /** Calls accepted and not yet answered. */
  activeCalls: number;
  batches: number;
  /** Clips and frames that went through the model in those batches. */
  clips: number;
  frames: number;
  meanBatchSize: number;
  videosDecoded: number;
  accepted: number;
  completed: number;
  /** Calls that rejected, by error code (E_OVERLOADED, E_TIMEOUT, E_ABORTED, E_VIDEO_DECODE, ...). */
  rejections: Partial<Record<ErrorCode, number>>;
}

/** What each finished batch reports to 'batch' listeners (metrics, benchmarks). */
export interface BatchEvent {
  clips: number;
  frames: number;
  calls: number;
  durationMs: number;
}

interface Call {
  items: Item[];
  topK: number;
  results: Prediction[];
  remaining: number;
  settled: boolean;
  controller: AbortController;
  resolve: (predictions: Prediction[]) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

interface Item {
  call: Call;
  index: number;
  state: 'decoding' | 'ready' | 'running' | 'done';
  clip?: Clip;
  readyAt: number;
}

function sizeKey(clip: Clip): string {
  return `${clip.height}x${clip.width}`;
}

function codeOf(error: unknown): ErrorCode {
  return error instanceof VideoRNNError ? error.code : 'E_NATIVE';
}

export class PredictionService extends EventEmitter {
  readonly model: VideoRNN;
  readonly limits: Readonly<ServiceLimits>;
  private readonly decodeSlots: Semaphore;
  private readonly decoder: VideoDecoder;
  private readonly ready: Item[] = [];
  private readonly calls = new Set<Promise<unknown>>();
  private pending = 0;
  private decodingNow = 0;
  private runningClips = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly counts = { batches: 0, clips: 0, frames: 0, videosDecoded: 0, accepted: 0, completed: 0, batchMs: 0 };
  private readonly rejections: Partial<Record<ErrorCode, number>> = {};

  constructor(model: VideoRNN, options?: PredictionServiceOptions) {
    super();
    if (typeof model !== 'object' || model === null || typeof model.predict !== 'function') {
      throw invalidArgument('model', 'a VideoRNN', model);
    }
    this.model = model;
    this.limits = Object.freeze(resolveLimits(options));
    this.decodeSlots = new Semaphore(this.limits.decodeConcurrency);
    // Each ffmpeg process takes a slot of the service's and one of the process-wide limit.
    this.decoder = new VideoDecoder([this.decodeSlots, decodeSlots]);
  }

  get stats(): ServiceStats {
    const { batches, clips, frames, videosDecoded, accepted, completed } = this.counts;
    return {
      queued: this.pending, decoding: this.decodingNow, running: this.runningClips, activeCalls: this.calls.size,
      batches, clips, frames, meanBatchSize: batches === 0 ? 0 : clips / batches, videosDecoded, accepted, completed,
      rejections: { ...this.rejections },
    };
  }

  /** True until close() is called and while the queue has room for one more clip. */
  get accepting(): boolean {
    return !this.closing && this.pending < this.limits.maxQueue;
  }

  /** Mean milliseconds a batch took so far (0 before the first). */
  get meanBatchMs(): number {
    return this.counts.batches === 0 ? 0 : this.counts.batchMs / this.counts.batches;
  }

  /**
   * Predicts one input or several (paths or Clips); resolves with one Prediction per input, in input
   * order, equal to `model.predict` on the same inputs. Rejects with E_OVERLOADED when the queue is
   * full, E_TIMEOUT after `timeoutMs`, E_ABORTED when `signal` fires; the other calls are unaffected.
   */
  predict(input: VideoInput | VideoInput[], options: ServicePredictOptions = {}): Promise<Prediction[]> {
    try {
      return this.accept(input, options);
    } catch (error) {
      this.count(error);
      return Promise.reject(error);
    }
  }

  private accept(input: VideoInput | VideoInput[], options: ServicePredictOptions): Promise<Prediction[]> {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'an object', options);
    const inputs = Array.isArray(input) ? input : [input];
    if (inputs.length === 0) throw invalidArgument('input', 'at least one path or Clip', input);
    inputs.forEach((item, index) => {
      if (typeof item === 'string') checkString(`input[${index}]`, item);
      else checkClip(item, `input[${index}]`);
    });
    const topK = checkInteger('topK', options.topK ?? 5, 1, this.model.classes.length * 1000);
    const timeoutMs = options.timeoutMs === undefined ? this.limits.timeoutMs : checkInteger('timeoutMs', options.timeoutMs, 1, 2_147_483_647);
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('signal', 'an AbortSignal', signal);
    if (this.closing) throw new VideoRNNError('E_DISPOSED', 'the prediction service is closed');
    if (signal?.aborted) throw new VideoRNNError('E_ABORTED', 'the prediction was aborted', { cause: signal.reason });
    if (inputs.length > this.limits.maxQueue) {
      throw invalidArgument('input', `at most ${this.limits.maxQueue} videos (maxQueue)`, `${inputs.length} videos`);
    }
    if (this.pending + inputs.length > this.limits.maxQueue) {
      throw new VideoRNNError('E_OVERLOADED', `the queue holds ${this.pending} of at most ${this.limits.maxQueue} clips; retry later`);
    }

    let settle!: Pick<Call, 'resolve' | 'reject'>;
    const promise = new Promise<Prediction[]>((resolve, reject) => { settle = { resolve, reject }; });
    const call: Call = {
      items: [], topK, results: new Array(inputs.length), remaining: inputs.length, settled: false,
      controller: new AbortController(), ...settle, cleanup: () => undefined,
    };
    const timer = setTimeout(() => this.fail(call, new VideoRNNError('E_TIMEOUT', `no answer within ${timeoutMs} ms (timeoutMs)`)),
      timeoutMs);
    const unsubscribe = onAbort(signal, () => this.fail(call, new VideoRNNError('E_ABORTED', 'the prediction was aborted',
      { cause: signal?.reason })));
    call.cleanup = () => { clearTimeout(timer); unsubscribe(); };
    this.counts.accepted += 1;
    this.pending += inputs.length;
    const tracked = promise.catch(() => undefined).finally(() => this.calls.delete(tracked));
    this.calls.add(tracked);

    call.items = inputs.map((value, index) => ({ call, index, state: 'decoding', readyAt: 0 }));
    call.items.forEach((item, index) => {
      const value = inputs[index];
      if (typeof value === 'string') {
        this.decode(item, value);
      } else {
        this.markReady(item, value);
      }
    });
    return promise;
  }

  /** Stops taking calls (they reject with E_DISPOSED) and resolves once every accepted call is answered. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closing = true;
      this.schedule();
      this.closed = (async () => {
        while (this.calls.size > 0) await Promise.all([...this.calls]);
      })();
    }
    return this.closed;
  }

  private async decode(item: Item, file: string): Promise<void> {
    const { call } = item;
    const signal = call.controller.signal;
    this.decodingNow += 1;
    try {
      // decodeVideo checks the stated duration before decoding and the decoded timestamps while it
      // decodes, and refuses a video that states none. Videos waiting for a process at the same time
      // share one (src/video/group.ts).
      const { maxVideoSeconds } = this.limits;
      const { frameSize, sampling } = this.model.config;
      const clip = await this.decoder.decode(file, { size: frameSize, ...sampling, signal, ...(maxVideoSeconds === undefined ? {} : { maxVideoSeconds }) });
      this.counts.videosDecoded += 1;
      if (!call.settled) this.markReady(item, clip);
    } catch (error) {
      this.fail(call, error);
    } finally {
      this.decodingNow -= 1;
    }
  }

  private markReady(item: Item, clip: Clip): void {
    item.clip = clip;
    item.state = 'ready';
    item.readyAt = performance.now();
    this.ready.push(item);
    this.schedule();
  }

  /**
   * Starts a batch when the model is free: a full one (clips of one frame size) if there is one, else
   * the oldest waiting clip's once its delay has passed (at once when closing: nothing more will join).
   */
  private schedule(): void {
    if (this.ready.length === 0) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
      return;
    }
    if (this.runningClips > 0) return;
    const counts = new Map<string, number>();
    for (const item of this.ready) {
      const key = sizeKey(item.clip as Clip);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const full = [...counts].find(([, count]) => count >= this.limits.maxBatchClips)?.[0];
    const due = this.ready[0].readyAt + this.limits.maxDelayMs;
    const now = performance.now();
    if (full !== undefined || now >= due || this.closing) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
      void this.runBatch(full ?? sizeKey(this.ready[0].clip as Clip));
      return;
    }
    if (this.delayTimer === undefined) {
      this.delayTimer = setTimeout(() => {
        this.delayTimer = undefined;
        this.schedule();
      }, Math.max(0, due - now));
    }
  }

  private async runBatch(key: string): Promise<void> {
    const batch: Item[] = [];
    for (let index = 0; index < this.ready.length && batch.length < this.limits.maxBatchClips;) {
      if (sizeKey(this.ready[index].clip as Clip) === key) batch.push(...this.ready.splice(index, 1));
      else index += 1;
    }
    for (const item of batch) item.state = 'running';
    this.pending -= batch.length;
    this.runningClips = batch.length;
    const clips = batch.map((item) => item.clip as Clip);
    const frames = clips.reduce((sum, clip) => sum + clip.frames, 0);
    const started = performance.now();
    try {
      const predictions = await this.model.predict(clips, { topK: this.model.classes.length, batchSize: clips.length });
      const durationMs = performance.now() - started;
      Object.assign(this.counts, { batches: this.counts.batches + 1, clips: this.counts.clips + clips.length,
        frames: this.counts.frames + frames, batchMs: this.counts.batchMs + durationMs });
      const calls = new Set(batch.map((item) => item.call)).size;
      batch.forEach((item, row) => this.deliver(item, predictions[row]));
      this.emit('batch', { clips: clips.length, frames, calls, durationMs } satisfies BatchEvent);
    } catch (error) {
      for (const item of batch) this.fail(item.call, error);
    } finally {
      for (const item of batch) {
        item.state = 'done';
        item.clip = undefined;
      }
      this.runningClips = 0;
      this.schedule();
    }
  }

  private deliver(item: Item, prediction: Prediction): void {
    const { call } = item;
    if (call.settled) return;
    call.results[item.index] = { ...prediction, topK: prediction.topK.slice(0, call.topK) };
    call.remaining -= 1;
    if (call.remaining > 0) return;
    call.settled = true;
    call.cleanup();
    this.counts.completed += 1;
    call.resolve(call.results);
  }

  /** Rejects a call once; its clips that have not reached a batch leave the queue, the running batch is left alone. */
  private fail(call: Call, error: unknown): void {
    if (call.settled) return;
    call.settled = true;
    call.cleanup();
    for (const item of call.items) {
      if (item.state === 'decoding' || item.state === 'ready') {
        if (item.state === 'ready') this.ready.splice(this.ready.indexOf(item), 1);
        item.state = 'done';
        item.clip = undefined;
        this.pending -= 1;
      }
    }
    // Stops this call's ffmpeg processes and its waits for a decode slot.
    call.controller.abort(error);
    this.count(error);
    call.reject(error);
    this.schedule();
  }

  private count(error: unknown): void {
    const code = codeOf(error);
    this.rejections[code] = (this.rejections[code] ?? 0) + 1;
  }
}
