import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upload, type UploadEvent, type UploadOptions } from '../../src/index.js';
import { startSandbox, type FaultOptions, type Sandbox } from '../../src/sandbox/server.js';
import { FakeClock } from '../fake-clock.js';
import { closeAfter, runBin, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, expectNoKey, HOSTILE_KEY, pdfs, timesStored } from './attack-helpers.js';

const FILES = 12;

async function hostile(faults: FaultOptions, apiKey = HOSTILE_KEY): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey, faults: { seed: 7, ...faults } }));
}

async function uploadTo(server: Sandbox, dir: string, extra: Partial<UploadOptions> = {}) {
  const events: UploadEvent[] = [];
  const summary = await upload({
    paths: [dir],
    entity: 'cust-1',
    org: server.org,
    baseUrl: server.url,
    apiKey: HOSTILE_KEY,
    rate: 0,
    retries: 1,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { summary, events, all: [...events, summary] as unknown as Array<Record<string, unknown>> };
}

describe('a server that echoes the key', () => {
  // Every kind of answer a leaky gateway gives: errors, a refusal, a redirect with the key in its
  // query, a body cut short (the key JSON-escaped in it), headers.
  const echoing: FaultOptions = {
    echoKey: true,
    error500: 0.2,
    error503: 0.15,
    redirect: 0.15,
    hugeError: 0.1,
    locked423: 0.1,
  };

  it('never puts it in stdout, stderr, the report or the journal, in any of its forms', async () => {
    const dir = await pdfs(FILES);
    const out = await tempDir();
    const server = await hostile(echoing);
    const texts: Record<string, string> = {};
    for (const [name, flags] of [
      ['json', ['--json', '--verbose']],
      ['human', ['--verbose']],
    ] as const) {
      const report = join(out, `${name}.csv`);
      const journal = join(out, `${name}.jsonl`);
      const run = await runBin(
        [
          'upload',
          dir,
          '--entity',
          `cust-${name}`,
          ...toSandbox(server),
          '--retries',
          '1',
          '--report',
          report,
          '--journal',
          journal,
          ...flags,
        ],
        { cwd: out, env: { U21_API_KEY: HOSTILE_KEY } },
      );
      expect(run.code, run.stderr).toBe(1);
      Object.assign(texts, {
        [`${name} stdout`]: run.stdout,
        [`${name} stderr`]: run.stderr,
        [`${name} report`]: await readFile(report, 'utf8'),
        [`${name} journal`]: await readFile(journal, 'utf8'),
      });
      if (name === 'json') {
        expectAccountedFor(run.events, FILES);
        const uploaded = run.events.filter((e) => e.event === 'uploaded').length;
        expect(server.stored.filter((m) => m.objectId === 'cust-json')).toHaveLength(uploaded);
        // The echoes were there to be redacted: the messages kept their other words.
        expect(run.stdout).toContain('[redacted]');
      }
    }
    expectNoKey(texts);
  });

  it('never puts it in the message of a refused key, nor in what upload() throws or returns', async () => {
    const dir = await pdfs(3);
    const server = await hostile({ echoKey: true }, 'the-right-key');
    const { summary, all } = await uploadTo(server, dir);
    expect(summary.stopped).toBe('auth');
    expect(server.stored).toHaveLength(0);
    const failed = all.find((e) => e.event === 'failed')!;
    expect(failed).toMatchObject({ status: 401, message: 'bad key: [redacted]' });
    expectNoKey({ events: JSON.stringify(all) });
  });
});

describe('a server that redirects', () => {
  it('is not followed: the key goes nowhere else, and the file fails saying where it pointed', async () => {
    const elsewhere = closeAfter(await startSandbox());
    const server = await hostile({ redirect: 1, redirectTo: `${elsewhere.url}/steal`, echoKey: true });
    const { summary, all } = await uploadTo(server, await pdfs(3));
    expect(summary).toMatchObject({ uploaded: 0, failed: 3, retries: 0 });
    expect(elsewhere.requests).toHaveLength(0);
    const failed = all.filter((e) => e.event === 'failed');
    expect(failed[0]).toMatchObject({
      status: 307,
      message: expect.stringMatching(
        new RegExp(`^redirected to ${elsewhere.url}/steal\\?key=\\[redacted\\]; not followed`),
      ),
    });
    expectNoKey({ events: JSON.stringify(all) });
  });
});

describe('a server whose answer breaks after a 2xx status', () => {
  it.each(['stallAfterStore', 'cutAfterStore', 'closeAfterAnswer'] as const)(
    '%s: the file is uploaded once, never sent again',
    async (fault) => {
      const server = await hostile({ [fault]: 0.5 });
      const { summary, events, all } = await uploadTo(server, await pdfs(FILES), { retries: 3, timeout: 30 });
      expect(
        server.requests.filter((r) => r.fault === fault.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).length,
      ).toBeGreaterThan(0);
      expect(summary).toMatchObject({ uploaded: FILES, failed: 0, retries: 0, possibly_duplicated: 0 });
      expect([...timesStored(server).values()]).toEqual(Array(FILES).fill(1));
      expect(events.filter((e) => e.event === 'attempt')).toHaveLength(FILES);
      expectAccountedFor(all, FILES);
    },
  );
});

describe('a server that answers with a huge body', () => {
  it('is read only as far as a message needs: the client hangs up, the message is short', async () => {
    const server = await hostile({ hugeError: 1, echoKey: true });
    const { summary, all } = await uploadTo(server, await pdfs(2), { retries: 0 });
    expect(summary).toMatchObject({ uploaded: 0, failed: 2 });
    // Each 50 MB answer was cut off by the client, not read to its end.
    await expect.poll(() => server.requests.map((r) => r.clientLeft)).toEqual([true, true]);
    for (const failed of all.filter((e) => e.event === 'failed'))
      expect(String(failed.message).length).toBeLessThanOrEqual(301);
    expectNoKey({ events: JSON.stringify(all) });
  });
});

describe('a server that asks for absurd waits', () => {
  /** Runs upload() on fake time, moving it a second at a time until the run ends; returns the fake time it took. */
  /** Runs an upload while fake time moves `stepMs` every few real milliseconds (real work takes some steps too). */
  async function onFakeTime(server: Sandbox, dir: string, clock: FakeClock, stepMs = 1_000) {
    let done = false;
    const started = clock.time;
    const running = uploadTo(server, dir, { clock, retries: 8 }).finally(() => (done = true));
    while (!done) {
      await clock.advance(stepMs);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return { ...(await running), waitedMs: clock.time - started };
  }

  it('Retry-After: 999999 pauses at most a minute, and says who asked and until when', async () => {
    const server = await hostile({ absurdRetryAfter: 0.5 });
    const clock = new FakeClock(0);
    const { summary, events, all } = await onFakeTime(server, await pdfs(4), clock);
    expect(summary).toMatchObject({ uploaded: 4, failed: 0 });
    expect(summary.retries).toBeGreaterThan(0);
    const warnings = events.filter((e) => e.event === 'warning').map((e) => (e as { message: string }).message);
    expect(warnings.length).toBeGreaterThan(0);
    for (const warning of warnings)
      expect(warning).toMatch(
        /^127\.0\.0\.1:\d+ asked to wait 999,999 s \(Retry-After\); waiting at most 60 s, until \d{4}-\d\d-\d\dT/,
      );
    expect(warnings.length).toBeLessThanOrEqual(server.requests.filter((r) => r.status === 429).length);
    for (const retry of events.filter((e) => e.event === 'retry'))
      expect((retry as { delay_ms: number }).delay_ms).toBeLessThanOrEqual(61_000);
    expectAccountedFor(all, 4);
  });

  it('an X-RateLimit-Reset in epoch milliseconds is read as such: a 3 s wait, not one of decades', async () => {
    const server = await hostile({ resetInMs: 0.5 });
    const clock = new FakeClock(0);
    clock.time = Date.now();
    // Small steps: the real work of the run (a check, loopback requests) takes steps as well, and must not count as waiting.
    const { summary, events, waitedMs } = await onFakeTime(server, await pdfs(4), clock, 100);
    expect(summary).toMatchObject({ uploaded: 4, failed: 0 });
    expect(waitedMs).toBeLessThan(30_000);
    const delays = events.filter((e) => e.event === 'retry').map((e) => (e as { delay_ms: number }).delay_ms);
    expect(delays.length).toBeGreaterThan(0);
    for (const delay of delays) expect(delay).toBeLessThan(5_000);
  });
});
