import { VideoRNNError } from '../errors';
import { onAbort } from './abort';

interface Waiter {
  grant: (release: () => void) => void;
  cancel: (error: VideoRNNError) => void;
}

/** Bounds how many ffmpeg processes run at once; a waiter can leave the queue when its signal fires. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private limitValue: number) {}

  get limit(): number {
    return this.limitValue;
  }

  /** Raising the limit starts queued work at once; lowering it lets running work finish. */
  set limit(value: number) {
    this.limitValue = value;
    this.drain();
  }

  get running(): number {
    return this.active;
  }

  acquire(signal: AbortSignal | undefined, what: string): Promise<() => void> {
    if (signal?.aborted) {
      return Promise.reject(new VideoRNNError('E_ABORTED', `${what} was aborted`, { cause: signal.reason }));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          unsubscribe();
          resolve(release);
        },
        cancel: reject,
      };
      const unsubscribe = onAbort(signal, () => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        waiter.cancel(new VideoRNNError('E_ABORTED', `${what} was aborted`, { cause: signal?.reason }));
      });
      this.waiting.push(waiter);
      this.drain();
    });
  }

  private drain(): void {
    while (this.active < this.limitValue && this.waiting.length > 0) {
      const waiter = this.waiting.shift() as Waiter;
      this.active += 1;
      let released = false;
      waiter.grant(() => {
        if (released) return;
        released = true;
        this.active -= 1;
        this.drain();
      });
    }
  }
}
