import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/core/transfer/scheduler.js';
import { FakeClock, settle } from '../fake-clock.js';

/** An async iterator over `items` that the test can hold back at any point. */
function fresh<T>(items: T[]): AsyncIterator<T> {
  let i = 0;
  return {
    next: () =>
      Promise.resolve(i < items.length ? { done: false, value: items[i++]! } : { done: true, value: undefined }),
  };
}

describe('Scheduler', () => {
  it('hands out fresh jobs in order and ends once every job is done', async () => {
    const scheduler = new Scheduler(fresh(['a', 'b', 'c']), new FakeClock());
    const handed: Array<string | undefined> = [];
    for (let i = 0; i < 3; i++) {
      handed.push(await scheduler.next());
      scheduler.done();
    }
    expect(handed).toEqual(['a', 'b', 'c']);
    expect(await scheduler.next()).toBeUndefined();
  });

  it('hands out a retry that is due before the next fresh job', async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler(fresh(['a', 'b', 'c']), clock);
    expect(await scheduler.next()).toBe('a');
    scheduler.defer('a', 1_000);
    scheduler.done();
    expect(await scheduler.next()).toBe('b'); // a is not due yet
    scheduler.done();
    await clock.advance(1_000);
    expect(await scheduler.next()).toBe('a');
    scheduler.done();
    expect(await scheduler.next()).toBe('c');
  });

  it('orders waiting retries by when they are due, not when they were deferred', async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler(fresh(['a', 'b']), clock);
    await scheduler.next();
    await scheduler.next();
    scheduler.defer('a', 5_000);
    scheduler.done();
    scheduler.defer('b', 1_000);
    scheduler.done();
    const order: Array<string | undefined> = [];
    const taking = (async () => {
      for (let i = 0; i < 2; i++) {
        order.push(await scheduler.next());
        scheduler.done();
      }
    })();
    await clock.advance(5_000);
    await taking;
    expect(order).toEqual(['b', 'a']);
  });

  it('is not over while a job is out with a worker: that job may come back as a retry', async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler(fresh(['a']), clock);
    expect(await scheduler.next()).toBe('a');
    let second: string | undefined = 'pending';
    void scheduler.next().then((job) => (second = job));
    await settle();
    expect(second).toBe('pending'); // the fresh jobs are done, but a is still out
    scheduler.defer('a', 2_000);
    scheduler.done();
    await settle();
    expect(second).toBe('pending');
    await clock.advance(2_000);
    expect(second).toBe('a');
    scheduler.done();
    expect(await scheduler.next()).toBeUndefined();
  });

  it('on stop hands back the jobs waiting for a retry and hands out nothing more', async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler(fresh(['a', 'b', 'c']), clock);
    await scheduler.next();
    scheduler.defer('a', 10_000);
    scheduler.done();
    let waiting: string | undefined = 'pending';
    await scheduler.next(); // b, still out
    void scheduler.next().then((job) => (waiting = job)); // c
    await settle();
    expect(waiting).toBe('c');
    expect(scheduler.stop()).toEqual(['a']);
    expect(await scheduler.next()).toBeUndefined();
  });

  it('hands back a fresh job pulled just as the run stopped, rather than losing it', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow: AsyncIterator<string> = { next: () => held.then(() => ({ done: false, value: 'late' })) };
    const scheduler = new Scheduler(slow, new FakeClock());
    const next = scheduler.next();
    const left = scheduler.stop();
    release();
    expect(await next).toBeUndefined();
    expect([...left, ...scheduler.stop()]).toEqual(['late']);
  });

  it("stops handing out when the caller's signal aborts, also while waiting", async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler(fresh(['a']), clock);
    await scheduler.next();
    scheduler.defer('a', 60_000);
    scheduler.done();
    const abort = new AbortController();
    const next = scheduler.next(abort.signal);
    abort.abort();
    expect(await next).toBeUndefined();
  });
});
