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

const after: Clock['after'] = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  return () => clearTimeout(timer);
};

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => (ms <= 0 && !signal?.aborted ? Promise.resolve() : sleepOn(after, Math.max(0, ms), signal)),
  after,
  random: Math.random,
};
