// Ctrl-C during long work: the first one aborts through an AbortSignal, so training stops at a batch
// boundary and the last checkpoint stays as it was written; a second one quits at once.
import { exitCodes } from './errors';

export interface Interruptible {
  signal: AbortSignal;
  /** Removes the handlers; Ctrl-C kills the process again. */
  release(): void;
}

export function onInterrupt(notice: (message: string) => void, beforeExit: () => void = () => undefined): Interruptible {
  const controller = new AbortController();
  const handle = (signalName: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      beforeExit();
      process.exit(exitCodes.interrupted);
    }
    notice(`${signalName === 'SIGINT' ? 'interrupted' : signalName}: stopping at the next batch boundary (Ctrl-C again to quit now)`);
    controller.abort(new Error(`received ${signalName}`));
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  return {
    signal: controller.signal,
    release() {
      process.off('SIGINT', handle);
      process.off('SIGTERM', handle);
    },
  };
}
