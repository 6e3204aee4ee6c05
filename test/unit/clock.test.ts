import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, systemClock } from '../../src/core/shared/clock.js';

afterEach(() => {
  vi.useRealTimers();
});

const DAY_MS = 86_400_000;

describe('the system clock', () => {
  it('fires a delay past the longest Node timer (2^31-1 ms) at its time, not early', () => {
    vi.useFakeTimers();
    const fire = vi.fn();
    systemClock.after(MAX_TIMER_MS + 5 * DAY_MS, fire);
    vi.advanceTimersByTime(1);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(5 * DAY_MS - 2);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps a delay of 116 days (--rate 0.0000001) as a chain of timers, one at a time, each within Node’s range', () => {
    vi.useFakeTimers();
    const fire = vi.fn();
    const ms = 1e10;
    systemClock.after(ms, fire);
    for (let waited = 0; waited + MAX_TIMER_MS < ms; waited += MAX_TIMER_MS) {
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(MAX_TIMER_MS);
      expect(fire).not.toHaveBeenCalled();
    }
    vi.advanceTimersByTime(ms % MAX_TIMER_MS);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it('cancels a long delay at any link of its chain', () => {
    vi.useFakeTimers();
    const fire = vi.fn();
    const cancel = systemClock.after(3 * MAX_TIMER_MS, fire);
    vi.advanceTimersByTime(MAX_TIMER_MS + 10);
    cancel();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(fire).not.toHaveBeenCalled();
  });

  it('never fires an infinite delay', () => {
    vi.useFakeTimers();
    const fire = vi.fn();
    const cancel = systemClock.after(Infinity, fire);
    vi.advanceTimersByTime(10 * MAX_TIMER_MS);
    expect(fire).not.toHaveBeenCalled();
    cancel();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a sleep of a month at once when its signal aborts', async () => {
    vi.useFakeTimers();
    const stop = new AbortController();
    const slept = systemClock.sleep(30 * DAY_MS, stop.signal);
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    stop.abort(new Error('interrupted'));
    await expect(slept).rejects.toThrow('interrupted');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with Node’s own timers: a delay past 2^31-1 ms neither fires early nor warns', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const fire = vi.fn();
    const cancel = systemClock.after(1e10, fire);
    try {
      // A timer that overflows fires after 1 ms; this one, armed later for 20 ms, comes after it.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      expect(fire).not.toHaveBeenCalled();
      expect(warnings.map((w) => w.name)).not.toContain('TimeoutOverflowWarning');
    } finally {
      cancel();
      process.off('warning', onWarning);
    }
  });
});
