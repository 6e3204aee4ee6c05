import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { createFaultPlan, type FaultOptions } from '../../src/sandbox/faults.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter } from '../helpers.js';

const PNG = Buffer.from('89504e470d0a1a0a', 'hex');
const ENTITY = '/v1/acme/entities/cust-1/link-media';
const BODY = JSON.stringify([{ media: PNG.toString('base64'), name: 'a.png' }]);

async function sandbox(faults: FaultOptions): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey: 'k', org: 'acme', entities: ['cust-1'], faults }));
}

function put(server: Sandbox, init: { path?: string; key?: string; signal?: AbortSignal } = {}) {
  return fetch(`${server.url}${init.path ?? ENTITY}`, {
    method: 'PUT',
    headers: { 'u21-key': init.key ?? 'k', 'content-type': 'application/json' },
    body: BODY,
    ...(init.signal && { signal: init.signal }),
  });
}

/** The status, or 'error' when the connection failed without an answer. */
async function statusOf(server: Sandbox): Promise<number | 'error'> {
  try {
    const response = await put(server);
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 'error';
  }
}

describe('sandbox faults: drawn by a seeded PRNG', () => {
  const mix: FaultOptions = {
    seed: 42,
    rate429: 0.1,
    error500: 0.1,
    error503: 0.1,
    locked423: 0.1,
    resetBeforeStore: 0.1,
    resetAfterStore: 0.1,
    slow: 0.1,
    slowMs: 5,
  };

  async function faultSequence() {
    const server = await sandbox(mix);
    const statuses = [];
    for (let i = 0; i < 60; i++) statuses.push(await statusOf(server));
    return { server, statuses, faults: server.requests.map((r) => r.fault ?? 'none') };
  }

  it('injects every fault kind, the same ones for the same seed and request order', async () => {
    const first = await faultSequence();
    const second = await faultSequence();
    expect(first.server.requests).toHaveLength(60);
    expect(second.faults).toEqual(first.faults);
    expect(second.statuses).toEqual(first.statuses);
    expect(new Set(first.faults)).toEqual(
      new Set(['none', '429', '500', '503', '423', 'reset-before', 'reset-after', 'slow']),
    );
  });

  it('answers each fault with its status, and stores only for normal, slow and reset-after requests', async () => {
    const { server, statuses, faults } = await faultSequence();
    const expected: Record<string, number | 'error'> = {
      none: 200,
      slow: 200,
      '429': 429,
      '500': 500,
      '503': 503,
      '423': 423,
      'reset-before': 'error',
      'reset-after': 'error',
    };
    expect(statuses).toEqual(faults.map((f) => expected[f]));
    const storing = faults.filter((f) => f === 'none' || f === 'slow' || f === 'reset-after').length;
    expect(server.stored).toHaveLength(storing);
  });

  it('refuses probabilities that add up to more than 1', () => {
    expect(() => createFaultPlan({ error500: 0.6, error503: 0.5 })).toThrow(RangeError);
    expect(() => createFaultPlan({ slow: -0.1 })).toThrow(RangeError);
    expect(() => createFaultPlan({ error500: 0.5, error503: 0.5 })).not.toThrow();
  });

  it('never replaces a 401, 403 or 404 with a fault', async () => {
    const server = await sandbox({ error500: 1 });
    expect((await put(server, { key: 'wrong' })).status).toBe(401);
    expect((await put(server, { path: '/v1/other/entities/cust-1/link-media' })).status).toBe(403);
    expect((await put(server, { path: '/v1/acme/entities/ghost/link-media' })).status).toBe(404);
    expect((await put(server)).status).toBe(500);
    expect(server.requests.map((r) => r.fault)).toEqual([undefined, undefined, undefined, '500']);
  });
});

describe('sandbox faults: rate limits', () => {
  it('sends Retry-After and X-RateLimit-* headers with an injected 429', async () => {
    const server = await sandbox({ rate429: 1, retryAfterSeconds: 3 });
    const response = await put(server);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(response.headers.get('x-ratelimit-limit')).toBe('200');
    expect(response.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(response.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 2);
    expect(server.stored).toHaveLength(0);
    expect(server.requests[0]?.fault).toBe('429');
  });

  it('answers 429 to a burst beyond 5 requests at 5/s and accepts again a second later', async () => {
    const server = await sandbox({ rateLimit: 5 });
    const responses = await Promise.all(Array.from({ length: 20 }, () => put(server)));
    const statuses = responses.map((r) => r.status);
    // 5 is the burst; a sixth may pass if the burst took over 200 ms on a slow machine.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
    expect(statuses.filter((s) => s === 429).length).toBe(20 - statuses.filter((s) => s === 200).length);
    const limited = responses.find((r) => r.status === 429)!;
    expect(limited.headers.get('x-ratelimit-limit')).toBe('5');
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
    expect(server.requests.filter((r) => r.fault === 'rate-limit')).toHaveLength(
      statuses.filter((s) => s === 429).length,
    );

    await sleep(1100);
    expect((await put(server)).status).toBe(200);
  });
});

describe('sandbox faults: resets, stalls and latency', () => {
  it('stores the media but resets the connection with resetAfterStore', async () => {
    const server = await sandbox({ resetAfterStore: 1 });
    await expect(put(server)).rejects.toThrow();
    expect(server.stored).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ status: 0, files: 1, fault: 'reset-after' });
  });

  it('stores nothing and resets the connection with resetBeforeStore', async () => {
    const server = await sandbox({ resetBeforeStore: 1 });
    await expect(put(server)).rejects.toThrow();
    expect(server.stored).toHaveLength(0);
    expect(server.requests[0]).toMatchObject({ status: 0, files: 0, fault: 'reset-before' });
  });

  it('leaves the first request unanswered with stallFirst 1 and answers the second', async () => {
    const server = await sandbox({ stallFirst: 1 });
    await expect(put(server, { signal: AbortSignal.timeout(500) })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect((await put(server)).status).toBe(200);
    expect(server.stored).toHaveLength(1);
    expect(server.requests.map((r) => r.fault)).toEqual(['stall', undefined]);
  });

  it('closes while a stalled request is still open', async () => {
    const server = await startSandbox({ apiKey: 'k', org: 'acme', faults: { stallFirst: 1 } });
    const stalled = put(server).catch((error: unknown) => error);
    while (server.requests.length === 0) await sleep(10);
    await server.close();
    expect(await stalled).toBeInstanceOf(Error);
  });

  it('delays every response by latencyMs', async () => {
    const server = await sandbox({ latencyMs: 200 });
    for (const key of ['k', 'wrong']) {
      const start = performance.now();
      const response = await put(server, { key });
      await response.arrayBuffer();
      expect(performance.now() - start).toBeGreaterThanOrEqual(200);
    }
  });
});
