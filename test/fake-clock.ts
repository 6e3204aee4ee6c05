import { sleepOn, type Clock } from '../src/core/shared/clock.js';

/** A clock that moves only when the test says so; sleeps resolve in time order. */
export class FakeClock implements Clock {
  time = 1_000_000;
  private timers: Array<{ at: number; resolve: () => void }> = [];

  constructor(private readonly randomValue = 0.5) {}

  now = () => this.time;
  random = () => this.randomValue;

  sleep = (ms: number, signal?: AbortSignal) => sleepOn(this.after, ms, signal);

  after = (ms: number, fire: () => void) => {
    const timer = { at: this.time + Math.max(0, ms), resolve: fire };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  };

  /** Moves time forward by `ms`, waking each sleeper at its moment and letting it run. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.time = Math.max(this.time, next.at);
      this.timers = this.timers.filter((t) => t !== next);
      next.resolve();
    }
    this.time = end;
    await settle();
  }
}

/** Lets pending promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
