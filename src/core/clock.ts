import { setTimeout as delay } from 'node:timers/promises';

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

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    if (ms <= 0) return signal?.throwIfAborted();
    await delay(ms, undefined, signal ? { signal } : undefined);
  },
  after: (ms, fire) => {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  },
  random: Math.random,
};
