/** Time as the transfer engine sees it; tests pass a fake one. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Calls `fire` after `ms` unless the returned cancel is called first. For the timers set and
   * cancelled once a request: no promise, signal or abort error is made for them.
   */
  after(ms: number, fire: () => void): () => void;
  random(): number;
}

/** `sleep` made from a clock's `after`, so that a clock has one kind of timer. */
export function sleepOn(after: Clock['after'], ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      cancel();
      reject(signal!.reason as Error);
    };
    const cancel = after(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The longest delay one Node timer takes: past it, setTimeout fires at once (and warns). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Any delay, however long, kept: one past MAX_TIMER_MS is a chain of timers, each arming the
 * next, so a pace of one request a month (`--rate 0.0000004`) waits instead of spinning.
 * An infinite delay never fires; one that is not a number fires at once.
 */
const after: Clock['after'] = (ms, fire) => {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer =
      left > MAX_TIMER_MS
        ? setTimeout(() => arm(left - MAX_TIMER_MS), MAX_TIMER_MS)
        : setTimeout(fire, Math.max(0, left));
  };
  arm(Number.isNaN(ms) ? 0 : ms);
  return () => clearTimeout(timer);
};

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => (ms <= 0 && !signal?.aborted ? Promise.resolve() : sleepOn(after, Math.max(0, ms), signal)),
  after,
  random: Math.random,
};
