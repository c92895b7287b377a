/**
 * One real 'abort' listener per signal, fanned out here. A training loop shares one signal across
 * dozens of queued decodes; adding a listener each would trip Node's MaxListenersExceededWarning.
 */
const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `callback` once when `signal` aborts (at once if it already has); returns an unsubscribe function. */
export function onAbort(signal: AbortSignal | undefined, callback: () => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    callback();
    return () => undefined;
  }
  let callbacks = subscribers.get(signal);
  if (callbacks === undefined) {
    const created = new Set<() => void>();
    callbacks = created;
    subscribers.set(signal, created);
    signal.addEventListener('abort', () => {
      subscribers.delete(signal);
      for (const subscriber of [...created]) subscriber();
    }, { once: true });
  }
  const set = callbacks;
  set.add(callback);
  return () => {
    set.delete(callback);
  };
}
