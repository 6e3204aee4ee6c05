import { describe, expect, it } from 'vitest';
import { readAhead } from '../../src/core/transfer/read-ahead.js';

/** Yields 0..n-1, noting how many were taken; throws at `failAt`. */
function counting(n: number, failAt = -1) {
  const state = { taken: 0 };
  async function* gen() {
    for (let i = 0; i < n; i++) {
      if (i === failAt) throw new Error(`source failed at ${i}`);
      state.taken++;
      yield i;
    }
  }
  return { state, source: gen() };
}

describe('readAhead', () => {
  it('yields every item in order, each prepared once, before it is asked for', async () => {
    const { source } = counting(50);
    const prepared: number[] = [];
    const out: number[] = [];
    for await (const item of readAhead(source, { items: 8, weight: Infinity }, (i) => {
      prepared.push(i);
      return 0;
    })) {
      expect(prepared).toContain(item);
      out.push(item);
    }
    expect(out).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(prepared).toEqual(out);
  });

  it('takes at most `ahead` items beyond those asked for', async () => {
    const { state, source } = counting(100);
    const iterator = readAhead(source, { items: 8, weight: Infinity }, () => 0)[Symbol.asyncIterator]();
    await iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(state.taken).toBeLessThanOrEqual(1 + 8);
    await iterator.return?.(undefined);
  });

  it('takes no more ahead once the items taken weigh the limit, and a heavy item when under it', async () => {
    const { state, source } = counting(100);
    const iterator = readAhead(source, { items: 50, weight: 10 }, (i) => (i === 20 ? 100 : 3))[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // 0 was taken and yielded; then 1..4 weigh 12, over the limit of 10.
    expect(state.taken).toBe(5);
    for (let i = 1; i < 20; i++) expect((await iterator.next()).value).toBe(i);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(state.taken).toBe(21); // 20 weighs 100: nothing after it is taken until it is asked for
    expect((await iterator.next()).value).toBe(20);
    await iterator.return?.(undefined);
  });

  it("passes the source's failure on in its turn, after the items before it", async () => {
    const { source } = counting(10, 5);
    const out: number[] = [];
    await expect(async () => {
      for await (const item of readAhead(source, { items: 4, weight: Infinity }, () => 0)) out.push(item);
    }).rejects.toThrow('source failed at 5');
    expect(out).toEqual([0, 1, 2, 3, 4]);
  });

  it('leaves no unhandled failure when its consumer stops early', async () => {
    const { source } = counting(10, 3);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    for await (const item of readAhead(source, { items: 8, weight: Infinity }, () => 0)) if (item === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });
});
