import type { Clock } from '../shared/clock.js';

/**
 * Hands out work to the workers: due retries first, then fresh jobs. A job waiting for its
 * retry does not hold a worker, so the others move on meanwhile. The run is over when no fresh
 * job is left, no retry is waiting and no job is out with a worker (it might come back).
 */
export class Scheduler<J> {
  private readonly delayed: Array<{ job: J; at: number }> = [];
  private readonly orphans: J[] = [];
  private out = 0;
  private freshDone = false;
  private stopped = false;
  private changed: Array<() => void> = [];

  constructor(
    private readonly fresh: AsyncIterator<J>,
    private readonly clock: Clock,
  ) {}

  /** The next job, or undefined when the run is over or stopped. */
  async next(signal?: AbortSignal): Promise<J | undefined> {
    for (;;) {
      if (this.stopped || signal?.aborted) return undefined;
      const now = this.clock.now();
      const due = this.delayed[0];
      if (due && due.at <= now) {
        this.delayed.shift();
        this.out++;
        return due.job;
      }
      if (!this.freshDone) {
        this.out++; // counted before the await, so a concurrent caller does not see an idle run
        const item = await this.fresh.next();
        if (!item.done && !this.stopped) return item.value;
        // Pulled just as the run stopped: handed back by stop() rather than lost.
        if (!item.done) this.orphans.push(item.value);
        this.out--;
        if (item.done) this.freshDone = true;
        this.notify();
        continue;
      }
      if (!due && this.out === 0) return undefined;
      await this.waitForChange(due ? due.at - now : undefined, signal);
    }
  }

  /** Puts a job back to be handed out again after `delayMs`. Call before `done()`. */
  defer(job: J, delayMs: number): void {
    const at = this.clock.now() + delayMs;
    const index = this.delayed.findIndex((d) => d.at > at);
    this.delayed.splice(index === -1 ? this.delayed.length : index, 0, { job, at });
  }

  /** A worker finished with the job it was handed (after any `defer`). */
  done(): void {
    this.out--;
    this.notify();
  }

  /** Hands out nothing more; returns the jobs not handed out (waiting for a retry, or just pulled). */
  stop(): J[] {
    this.stopped = true;
    this.notify();
    return [...this.delayed.splice(0).map((d) => d.job), ...this.orphans.splice(0)];
  }

  private notify() {
    this.changed.splice(0).forEach((wake) => wake());
  }

  private async waitForChange(ms: number | undefined, signal?: AbortSignal): Promise<void> {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    this.changed.push(wake);
    signal?.addEventListener('abort', wake, { once: true });
    const cancelTimer = ms !== undefined ? this.clock.after(ms, wake) : undefined;
    await woken;
    cancelTimer?.();
    signal?.removeEventListener('abort', wake);
  }
}
