// One way to combine a caller's AbortSignal with a deadline, and to listen for an abort, so no adapter
// writes its own timer-and-listener pair (and forgets to remove one).

/** A listener or timer to let go of once the work it guards has settled. */
export interface Disposable {
  /** Removes the listener, clears the timer; safe to call twice. */
  dispose(): void;
}

/** The signal of a call with a deadline; see {@link deadline}. */
export interface Deadline extends Disposable {
  /** Fires on the caller's abort or at the deadline; undefined when there is neither. */
  readonly signal: AbortSignal | undefined;
  /** The deadline passed (as opposed to the caller aborting). */
  readonly expired: boolean;
}

/**
 * The caller's `signal` and a deadline of `timeoutMs` (none when undefined) as one signal, on
 * `AbortSignal.any`. The deadline's own timer (not `AbortSignal.timeout`'s, which cannot be cleared)
 * goes with `dispose()`, so a call that settles in time leaves no timer behind.
 */
export function deadline(signal: AbortSignal | undefined, timeoutMs: number | undefined): Deadline {
  if (timeoutMs === undefined) return { signal, expired: false, dispose() {} };
  const timer = new AbortController();
  const handle = setTimeout(() => timer.abort(), Math.max(0, timeoutMs));
  return {
    signal: signal ? AbortSignal.any([signal, timer.signal]) : timer.signal,
    get expired() {
      return timer.signal.aborted;
    },
    dispose: () => clearTimeout(handle),
  };
}

/** Calls `fn` once when `signal` fires (at once if it already has); `dispose()` stops listening. */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): Disposable {
  if (!signal) return { dispose() {} };
  if (signal.aborted) {
    fn();
    return { dispose() {} };
  }
  signal.addEventListener("abort", fn, { once: true });
  return { dispose: () => signal.removeEventListener("abort", fn) };
}

/** Resolves after `ms`, or rejects with `aborted()` when `signal` fires first. */
export function sleep(ms: number, signal: AbortSignal | undefined, aborted: () => unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const listening = onAbort(signal, () => {
      clearTimeout(timer);
      reject(aborted());
    });
    const timer = setTimeout(() => {
      listening.dispose();
      resolve();
    }, ms);
  });
}

/** Only the `signal` of a call's options, for passing on to a client call. */
export function signalOnly(options: { signal?: AbortSignal | undefined } | undefined): {
  signal?: AbortSignal;
} {
  return options?.signal ? { signal: options.signal } : {};
}
