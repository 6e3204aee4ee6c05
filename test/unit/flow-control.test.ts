import { describe, expect, it } from 'vitest';
import { FlowControl } from '../../src/core/transfer/flow-control.js';
import { FakeClock, settle } from '../fake-clock.js';

/** Starts `n` acquisitions and records when each one got through. */
function acquireMany(flow: FlowControl, clock: FakeClock, n: number) {
  const startedAt: number[] = [];
  for (let i = 0; i < n; i++) void flow.acquire().then(() => startedAt.push(clock.now()));
  return startedAt;
}

describe('flow control', () => {
  it('starts no more than the rate per second', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 10, concurrency: 100 }, clock);
    const started = acquireMany(flow, clock, 30);
    await clock.advance(1000);
    expect(started.length).toBeGreaterThanOrEqual(10);
    expect(started.length).toBeLessThanOrEqual(11);
    await clock.advance(2000);
    expect(started).toHaveLength(30);
    expect(started.at(-1)! - started[0]!).toBe(2900);
  });

  it('at a rate far below one a second (--rate 0.0000001) starts one, waits its whole interval for the next, and a stop ends the wait', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 0.0000001, concurrency: 16 }, clock);
    await flow.acquire();
    const stop = new AbortController();
    let next: 'waiting' | 'started' | 'stopped' = 'waiting';
    flow.acquire(stop.signal).then(
      () => (next = 'started'),
      () => (next = 'stopped'),
    );
    await clock.advance(1e10 - 1); // some 116 days, past what one Node timer holds
    expect(next).toBe('waiting');
    await clock.advance(1);
    expect(next).toBe('started');
    next = 'waiting';
    flow.acquire(stop.signal).then(
      () => (next = 'started'),
      () => (next = 'stopped'),
    );
    await clock.advance(1_000);
    stop.abort();
    await settle();
    expect(next).toBe('stopped');
  });

  it('keeps no more than the concurrency in flight', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 0, concurrency: 3 }, clock);
    const started = acquireMany(flow, clock, 5);
    await settle();
    expect(started).toHaveLength(3);
    flow.release();
    await settle();
    expect(started).toHaveLength(4);
  });

  it('after a 429 cuts rate and concurrency and pauses every start until the reset', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 40, concurrency: 16 }, clock);
    const first = acquireMany(flow, clock, 16);
    await clock.advance(1000);
    expect(first).toHaveLength(16);
    for (let i = 0; i < 15; i++) flow.release();
    flow.release({ throttled: true, resumeAt: clock.now() + 2000 });
    expect(flow.state.rate).toBeGreaterThanOrEqual(9.5); // 0.7 of the ~16/s actually started
    expect(flow.state.rate).toBeLessThanOrEqual(11.2);
    expect(flow.state.concurrency).toBe(8);

    const after = acquireMany(flow, clock, 5);
    await clock.advance(1999);
    expect(after).toHaveLength(0); // paused for everyone
    await clock.advance(1000);
    expect(after.length).toBeGreaterThan(0);
  });

  it('does not cut again for each 429 of the same burst', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 100, concurrency: 16 }, clock);
    acquireMany(flow, clock, 16);
    await clock.advance(1000);
    for (let i = 0; i < 16; i++) flow.release({ throttled: true });
    expect(flow.state.concurrency).toBe(8);
  });

  it('climbs back to the ceilings while responses succeed', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 50, concurrency: 8 }, clock);
    let stopped = false;
    // Eight workers, each request taking 20 ms.
    const workers = Array.from({ length: 8 }, async () => {
      while (!stopped) {
        await flow.acquire();
        await clock.sleep(20);
        flow.release();
      }
    });
    await clock.advance(2000);
    flow.release({ throttled: true }); // an extra 429 answer, as if from a ninth request
    const low = { ...flow.state };
    await clock.advance(30_000);
    stopped = true;
    await clock.advance(1000);
    await Promise.race([Promise.all(workers), settle()]);
    expect(low.rate).toBeLessThanOrEqual(35);
    expect(low.concurrency).toBe(4);
    expect(flow.state.rate).toBe(50);
    expect(flow.state.concurrency).toBe(8);
  });

  it('never goes above a ceiling under one request per second after a 429', async () => {
    const clock = new FakeClock();
    const flow = new FlowControl({ rate: 0.5, concurrency: 4 }, clock);
    acquireMany(flow, clock, 1);
    await clock.advance(10);
    flow.release({ throttled: true });
    expect(flow.state.rate).toBeLessThanOrEqual(0.5);
  });
});
