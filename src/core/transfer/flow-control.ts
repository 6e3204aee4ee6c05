import type { Clock } from '../shared/clock.js';

/** Ceilings a run never exceeds. `rate` 0 means no rate ceiling. */
export interface FlowLimits {
  rate: number;
  concurrency: number;
}

const MIN_RATE = 1;
/** A 429 cuts the pace to this share of what was actually started in the last second. */
const DECREASE_FACTOR = 0.7;
/** Each second of successes raises the pace by this share, and by at least MIN_RECOVERY_PER_S. */
const RECOVERY_SHARE = 0.1;
const MIN_RECOVERY_PER_S = 10;
/** After a 429, how long before another 429 may cut again: the in-flight ones were sent at the old pace. */
const DECREASE_COOLDOWN_MS = 1_000;

/**
 * Shared by every worker: starts requests no faster than the current rate and keeps no more
 * than the current concurrency in flight. A 429 cuts both and pauses every start until the
 * server's reset; successes climb back to the ceilings (AIMD), so a run settles just under
 * the server's limit.
 */
export class FlowControl {
  private rate: number;
  private concurrency: number;
  private inFlight = 0;
  /** No start planned yet: the first one's interval counts from when it starts, however long the interval (time 0 is not a planned slot). */
  private nextStart = -Infinity;
  private pausedUntil = 0;
  private lastDecrease = -Infinity;
  private successesSinceGrowth = 0;
  private readonly recentStarts: number[] = [];
  /** The user's --rate, or no ceiling (--rate 0). */
  private readonly ceiling: number;
  private readonly slotWaiters: Array<() => void> = [];

  constructor(
    private readonly limits: FlowLimits,
    private readonly clock: Clock,
  ) {
    this.ceiling = limits.rate > 0 ? limits.rate : Infinity;
    this.rate = this.ceiling;
    this.concurrency = limits.concurrency;
  }

  /** Current pace, for progress and tests. */
  get state() {
    return { rate: this.rate, concurrency: this.concurrency, inFlight: this.inFlight, pausedUntil: this.pausedUntil };
  }

  /** Waits for a free slot and the next start time, then takes the slot. */
  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.inFlight >= this.concurrency) {
        await this.slotFreed(signal);
        continue;
      }
      const now = this.clock.now();
      const startAt = Math.max(now, this.nextStart, this.pausedUntil);
      if (startAt > now) {
        await this.clock.sleep(startAt - now, signal);
        continue;
      }
      this.inFlight++;
      // From the planned slot when this start was just a little late (timer lateness must not
      // add up over thousands of starts); from now after an idle spell, so no burst follows.
      const interval = Number.isFinite(this.rate) ? 1000 / this.rate : 0;
      this.nextStart = (now - this.nextStart < interval ? this.nextStart : now) + interval;
      this.noteStart(now);
      return;
    }
  }

  /** Frees the slot taken by `acquire`, adjusting the pace to what the server said. */
  release(result: { throttled: boolean; resumeAt?: number } = { throttled: false }): void {
    this.inFlight--;
    if (result.throttled) this.slowDown(result.resumeAt);
    else this.speedUp();
    this.slotWaiters.splice(0).forEach((wake) => wake());
  }

  /** Resolves when a slot frees up or the signal aborts (the loop then throws). */
  private slotFreed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      this.slotWaiters.push(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  private slowDown(resumeAt: number | undefined) {
    const now = this.clock.now();
    if (resumeAt !== undefined) this.pausedUntil = Math.max(this.pausedUntil, resumeAt);
    if (now - this.lastDecrease < DECREASE_COOLDOWN_MS) return;
    this.lastDecrease = now;
    const before = Math.min(this.rate, Math.max(MIN_RATE, this.startsInLastSecond(now)));
    // Never above a ceiling set below MIN_RATE (--rate 0.5).
    this.rate = Math.min(this.ceiling, Math.max(MIN_RATE, before * DECREASE_FACTOR));
    this.concurrency = Math.max(1, Math.floor(this.concurrency / 2));
    this.successesSinceGrowth = 0;
  }

  private speedUp() {
    if (this.rate < this.ceiling) {
      // At `rate` successes a second, this adds RECOVERY_SHARE of the pace per second.
      this.rate = Math.min(this.ceiling, this.rate + Math.max(RECOVERY_SHARE, MIN_RECOVERY_PER_S / this.rate));
    }
    if (this.concurrency < this.limits.concurrency && ++this.successesSinceGrowth >= this.concurrency) {
      this.concurrency++;
      this.successesSinceGrowth = 0;
    }
  }

  private noteStart(now: number) {
    this.recentStarts.push(now);
    this.trimStarts(now);
  }

  private startsInLastSecond(now: number): number {
    this.trimStarts(now);
    return this.recentStarts.length;
  }

  private trimStarts(now: number) {
    let drop = 0;
    while (drop < this.recentStarts.length && this.recentStarts[drop]! <= now - 1000) drop++;
    if (drop > 0) this.recentStarts.splice(0, drop);
  }
}
