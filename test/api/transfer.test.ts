import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upload, type UploadEvent, type UploadOptions } from '../../src/index.js';
import { WHOLE_AT_MOST } from '../../src/core/files/file-types.js';
import { startSandbox, type SandboxOptions } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, sha256, tempDir, validContent, validContentOfSize } from '../helpers.js';

/** `count` distinct small files named by convention, so each one's bytes can be found in the store. */
async function makeFiles(count: number, bytes = 2000): Promise<string> {
  const dir = await tempDir();
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const name = `cust_${String(i).padStart(4, '0')}_selfie.jpg`;
      const data = validContentOfSize(name, bytes, i % 251);
      data.writeUInt32BE(i, 4); // after the JPEG signature
      return writeFile(join(dir, name), data);
    }),
  );
  return dir;
}

async function run(sandbox: SandboxOptions, options: Partial<UploadOptions> & { paths: string[] }) {
  const server = closeAfter(await startSandbox(sandbox));
  const events: UploadEvent[] = [];
  const summary = await upload({
    entity: 'cust-1',
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    onEvent: (e) => events.push(e),
    ...options,
  });
  return { server, events, summary };
}

const countBy = <T>(items: T[], key: (item: T) => string | undefined) => {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
};

describe('transfer under faults', () => {
  it('stores every one of 300 files through a seeded mix of every fault, and flags each one stored twice', async () => {
    const dir = await makeFiles(300);
    const { server, events, summary } = await run(
      {
        faults: {
          seed: 21,
          // Each 429 pauses the whole run for its Retry-After, so fewer of them keep the test short.
          rate429: 0.01,
          error500: 0.05,
          error503: 0.05,
          locked423: 0.03,
          resetBeforeStore: 0.05,
          resetAfterStore: 0.05,
          slow: 0.05,
          slowMs: 100,
          retryAfterSeconds: 1,
        },
      },
      { paths: [dir], concurrency: 16, rate: 0, retries: 10, timeout: 10 },
    );

    const faults = countBy(server.requests, (r) => r.fault);
    for (const kind of ['429', '500', '503', '423', 'reset-before', 'reset-after', 'slow'])
      expect(faults.get(kind), kind).toBeGreaterThan(0);

    expect(summary).toMatchObject({ total: 300, uploaded: 300, failed: 0, skipped: 0 });
    expect(summary.retries).toBe(events.filter((e) => e.event === 'retry').length);
    expect(summary.retries).toBeGreaterThan(0);

    const storedByName = countBy(server.stored, (m) => m.name);
    expect(storedByName.size).toBe(300);
    const flagged = new Set(
      events
        .filter((e) => e.event === 'uploaded' && e.possibly_duplicated)
        .map((e) => (e as { path: string }).path.split('/').at(-1)!),
    );
    for (const [name, times] of storedByName) {
      if (times > 1) expect(flagged.has(name), `${name} stored ${times} times`).toBe(true);
    }
    // Each reset after storing leaves exactly one extra copy; nothing else may.
    expect(server.stored.length).toBe(300 + faults.get('reset-after')!);
    expect(summary.possibly_duplicated).toBe(flagged.size);

    for (const media of server.stored.slice(0, 20)) expect(media.sha256).toBe(await sha256(join(dir, media.name)));
  }, 60_000);

  it.each(['multipart', 'json'] as const)(
    'stores every file byte for byte while stored bodies are read into again (%s)',
    async (format) => {
      // Sizes vary, so reused memory is larger than the body it takes; content is random, so any stray byte shows
      // (and not checked: random bytes may open like a gzip or a BMP).
      const dir = await tempDir();
      await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          writeFile(
            join(dir, `cust_${String(i).padStart(4, '0')}_selfie.jpg`),
            randomBytes(1 + ((i * 7919) % 150_000)),
          ),
        ),
      );
      const { server, summary } = await run({}, { paths: [dir], format, concurrency: 16, rate: 0, sniff: false });
      expect(summary).toMatchObject({ total: 300, uploaded: 300, failed: 0 });
      expect(server.stored).toHaveLength(300);
      for (const media of server.stored) expect(media.sha256, media.name).toBe(await sha256(join(dir, media.name)));
    },
    60_000,
  );

  it('streams files over 5 MiB through resets and 500s, flagging each one stored twice', async () => {
    const dir = await makeFiles(12, WHOLE_AT_MOST + 1);
    const { server, events, summary } = await run(
      {
        faults: { seed: 7, error500: 0.1, resetBeforeStore: 0.1, resetAfterStore: 0.2 },
        maxFileSize: 2 * WHOLE_AT_MOST,
      },
      { paths: [dir], concurrency: 8, rate: 0, retries: 10, timeout: 10, maxFileSize: 2 * WHOLE_AT_MOST },
    );
    const faults = countBy(server.requests, (r) => r.fault);
    expect(faults.get('reset-after')).toBeGreaterThan(0);
    expect(summary).toMatchObject({ total: 12, uploaded: 12, failed: 0 });
    const storedByName = countBy(server.stored, (m) => m.name);
    const flagged = new Set(
      events
        .filter((e) => e.event === 'uploaded' && e.possibly_duplicated)
        .map((e) => (e as { path: string }).path.split('/').at(-1)!),
    );
    for (const [name, times] of storedByName)
      if (times > 1) expect(flagged.has(name), `${name} stored ${times} times`).toBe(true);
    expect(server.stored.length).toBe(12 + faults.get('reset-after')!);
    for (const media of server.stored.slice(0, 5)) expect(media.sha256).toBe(await sha256(join(dir, media.name)));
  }, 60_000);

  it('slows the whole run down in a 429 storm and still completes, each file stored once', async () => {
    const dir = await makeFiles(60, 200);
    const started = Date.now();
    const { server, summary } = await run(
      { faults: { rateLimit: 30 } },
      { paths: [dir], concurrency: 16, rate: 100, retries: 10 },
    );
    const elapsed = Date.now() - started;
    const throttled = server.requests.filter((r) => r.status === 429).length;
    expect(summary).toMatchObject({ uploaded: 60, failed: 0 });
    expect(server.stored).toHaveLength(60);
    expect(throttled).toBeGreaterThan(0);
    // Hammering would draw a 429 for most requests; pacing keeps them a minority.
    expect(throttled).toBeLessThan(60);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
  }, 30_000);

  it('times out on a stalled server and retries instead of hanging', async () => {
    const { server, events, summary } = await run(
      { faults: { stallFirst: 1 } },
      { paths: [join(FIXTURES, 'selfie.jpg')], timeout: 0.5 },
    );
    expect(summary).toMatchObject({ uploaded: 1, failed: 0, retries: 1 });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'retry', attempt: 1, status: null, error_code: 'timeout' }),
    );
    // The stalled request had its whole body, so it may have been stored: flagged, to be checked.
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'uploaded', attempts: 2, possibly_duplicated: true }),
    );
    expect(server.stored).toHaveLength(1);
  }, 15_000);

  it('gives up after --retries and reports the last status', async () => {
    const { server, events, summary } = await run(
      { faults: { error503: 1 } },
      { paths: [join(FIXTURES, 'selfie.jpg')], retries: 2 },
    );
    expect(summary).toMatchObject({ uploaded: 0, failed: 1, retries: 2 });
    expect(server.requests).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ event: 'failed', status: 503, attempts: 3 });
  }, 15_000);

  it('does not retry a 404 or a 400', async () => {
    const { server, summary } = await run({ entities: ['other'] }, { paths: [join(FIXTURES, 'selfie.jpg')] });
    expect(summary).toMatchObject({ failed: 1, retries: 0 });
    expect(server.requests).toHaveLength(1);
  });
});

describe('batching', () => {
  it.each(['multipart', 'json'] as const)('sends several files per request in %s', async (format) => {
    const { server, summary } = await run({}, { paths: [FIXTURES], batch: 4, format });
    expect(summary.uploaded).toBe(10);
    expect(server.requests.map((r) => r.files).sort()).toEqual([2, 4, 4]);
    for (const media of server.stored) expect(media.sha256).toBe(await sha256(join(FIXTURES, media.name)));
  });

  it('keeps a request under 20 MB of files', async () => {
    const dir = await makeFiles(5, 4_500_000);
    const { server } = await run({}, { paths: [dir], batch: 10 });
    expect(server.requests.map((r) => r.files)).toEqual([4, 1]);
  }, 20_000);

  it('resends the whole batch on a retry', async () => {
    const { server, summary } = await run(
      { faults: { error500: 0.5, seed: 3 } },
      { paths: [FIXTURES], batch: 5, retries: 10 },
    );
    expect(summary).toMatchObject({ uploaded: 10, failed: 0 });
    expect(server.stored).toHaveLength(10);
    expect(server.requests.filter((r) => r.status === 500).length).toBeGreaterThan(0);
  });
});

describe('duplicates and stopping', () => {
  it('uploads the same content to the same entity once, unless duplicates are allowed', async () => {
    const dir = await tempDir();
    const data = validContent('.png', 'same bytes');
    await writeFile(join(dir, 'a.png'), data);
    await writeFile(join(dir, 'b.png'), data);
    await writeFile(join(dir, 'c.png'), validContent('.png', 'other bytes'));
    const once = await run({}, { paths: [dir] });
    expect(once.server.stored.map((m) => m.name).sort()).toEqual(['a.png', 'c.png']);
    expect(once.events).toContainEqual(
      expect.objectContaining({ event: 'skipped', path: join(dir, 'b.png'), reason: 'duplicate' }),
    );
    expect(once.summary).toMatchObject({ uploaded: 2, skipped: 1 });
    const both = await run({}, { paths: [dir], allowDuplicates: true });
    expect(both.server.stored).toHaveLength(3);
  });

  it('stops starting uploads after the first failure with failFast', async () => {
    const { server, events, summary } = await run(
      { entities: ['nobody'] },
      { paths: [FIXTURES], failFast: true, concurrency: 1 },
    );
    expect(server.requests).toHaveLength(1);
    expect(summary).toMatchObject({ failed: 1, uploaded: 0, skipped: 9, not_sent: 9, stopped: 'fail-fast' });
    expect(events.filter((e) => e.event === 'skipped' && e.reason === 'not_sent')).toHaveLength(9);
  });

  it('drains on the first stop signal: in-flight uploads finish, nothing new starts', async () => {
    const drain = new AbortController();
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 150 } }));
    const events: UploadEvent[] = [];
    const summary = await upload({
      paths: [FIXTURES],
      entity: 'c',
      org: server.org,
      baseUrl: server.url,
      apiKey: server.apiKey,
      concurrency: 2,
      drain: drain.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.event === 'uploaded') drain.abort();
      },
    });
    expect(summary.stopped).toBe('interrupted');
    expect(summary.uploaded).toBe(server.stored.length);
    expect(summary.uploaded).toBeGreaterThanOrEqual(1);
    expect(summary.uploaded).toBeLessThanOrEqual(2);
    expect(summary.uploaded + summary.failed + summary.skipped).toBe(10);
    expect(server.requests.length).toBe(summary.uploaded);
  });

  it('with failFast, starts nothing more even in workers already waiting for a start slot', async () => {
    const { server, summary } = await run(
      { entities: ['nobody'], faults: { latencyMs: 100 } },
      { paths: [FIXTURES], failFast: true, concurrency: 4, rate: 1 },
    );
    expect(server.requests).toHaveLength(1);
    expect(summary).toMatchObject({ failed: 1, not_sent: 9, stopped: 'fail-fast' });
  });

  it('keeps going when a file met earlier vanishes before a same-size file is compared with it', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.png'), validContent('.png', 'same-size-1'));
    await writeFile(join(dir, 'b.png'), validContent('.png', 'same-size-2'));
    const server = closeAfter(await startSandbox());
    const { rmSync } = await import('node:fs');
    const summary = await upload({
      paths: [dir],
      entity: 'x',
      org: server.org,
      baseUrl: server.url,
      apiKey: server.apiKey,
      concurrency: 1,
      onEvent: (e) => e.event === 'uploaded' && e.path.endsWith('a.png') && rmSync(join(dir, 'a.png')),
    });
    expect(summary).toMatchObject({ uploaded: 2, failed: 0 });
  });

  it('after a resume, a copy of content already on the entity is still a duplicate', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.png'), validContent('.png', 'same bytes'));
    await writeFile(join(dir, 'b.png'), validContent('.png', 'same bytes'));
    const journal = join(await tempDir(), 'j.jsonl');
    const first = await run({}, { paths: [dir], journal });
    expect(first.summary).toMatchObject({ uploaded: 1, skipped: 1 });
    const server = first.server;
    const second = await upload({
      paths: [dir],
      entity: 'cust-1',
      org: server.org,
      baseUrl: server.url,
      apiKey: server.apiKey,
      journal,
    });
    expect(second).toMatchObject({ uploaded: 0, skipped: 2 });
    expect(server.stored).toHaveLength(1);
  });
});

describe('a refused key', () => {
  it('lets requests already in flight finish with their own answer, none marked possibly duplicated', async () => {
    const { server, events, summary } = await run(
      { faults: { latencyMs: 200 } },
      { paths: [FIXTURES], apiKey: 'wrong', concurrency: 4 },
    );
    expect(summary.stopped).toBe('auth');
    expect(server.requests.length).toBeLessThanOrEqual(4);
    expect(summary.possibly_duplicated).toBe(0);
    const failed = events.filter((e) => e.event === 'failed');
    expect(failed.every((e) => (e as { status: number }).status === 401)).toBe(true);
    expect(summary.failed + summary.not_sent).toBe(10);
  });
});
