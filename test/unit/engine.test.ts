import { channel } from 'node:diagnostics_channel';
import { rmSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { ReaderThreads } from '../../src/core/body/reader-threads.js';
import { Journal } from '../../src/core/journal/journal.js';
import { OutcomeSink } from '../../src/core/outcomes/outcome-sink.js';
import type { Checked, PlannedFile } from '../../src/core/inputs/plan.js';
import { createRedactor } from '../../src/core/shared/redact.js';
import { UNREACHABLE_STREAK } from '../../src/core/transfer/connect-errors.js';
import { transfer } from '../../src/core/transfer/engine.js';
import { DEFAULT_RETRY_POLICY } from '../../src/core/transfer/retry-policy.js';
import type { Transport } from '../../src/core/transfer/transport.js';
import { upload, type UploadEvent, type UploadOptions, type UploadSummary } from '../../src/index.js';
import { FakeClock, settle } from '../fake-clock.js';
import { scratch, tempDir, validContent } from '../helpers.js';

/** What the scripted server saw of one request. */
interface Received {
  /** Fake time when its body had come in whole. */
  at: number;
  path: string;
  /** The file names it carried, in order. */
  names: string[];
}

/** How the script answers a request. */
type Answer =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** The connection breaks once the body is in: the server may have stored it. */
  | { reset: 'after-body' }
  /** The connection breaks before the body went out: nothing can have been stored. */
  | { reset: 'before-body' }
  /** No connection at all, with this error code (ECONNREFUSED, a certificate error, …). */
  | { connectError: string }
  /** No connection and no error until the request is cut (a proxy that never answers CONNECT, say). */
  | { stall: 'before-connection' }
  /** No answer until the request is cut (its timeout, or the run's abort). */
  | 'hang';

/**
 * An undici Dispatcher (undici's public base class) that answers by a script, in the order
 * undici's own dispatchers call a handler, and publishes undici:client:sendHeaders and
 * undici:request:bodySent as they do once a request is on a connection and once its body went
 * out in full.
 */
class ScriptedDispatcher extends Dispatcher {
  readonly received: Received[] = [];

  constructor(
    private readonly clock: FakeClock,
    private readonly script: (request: Received, index: number) => Answer | Promise<Answer>,
  ) {
    super();
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    let cut: (reason: Error) => void = () => {};
    const aborted = new Promise<Error>((resolve) => (cut = resolve));
    let abortReason: Error | undefined;
    handler.onConnect?.((reason?: Error) => {
      abortReason = reason ?? new Error('aborted');
      cut(abortReason);
    });
    void (async () => {
      const first = await this.answerOf(options, aborted);
      if (first === 'aborted' || abortReason) return handler.onError?.(abortReason ?? new Error('aborted'));
      if ('reset' in first)
        return handler.onError?.(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
      if ('connectError' in first)
        return handler.onError?.(
          Object.assign(new Error(`connect ${first.connectError} 127.0.0.1:9`), { code: first.connectError }),
        );
      const headers = Object.entries({ 'content-type': 'application/json', ...first.headers }).flatMap(([k, v]) => [
        Buffer.from(k),
        Buffer.from(v),
      ]);
      handler.onHeaders?.(first.status, headers, () => {}, '');
      if (first.body) handler.onData?.(Buffer.from(first.body));
      handler.onComplete?.([]);
    })();
    return true;
  }

  /** Requests dispatched, those that never connected included. */
  calls = 0;
  /** Bodies being read now: real disk work, which fake time must wait for. */
  reading = 0;

  private async answerOf(
    options: Dispatcher.DispatchOptions,
    aborted: Promise<Error>,
  ): Promise<Exclude<Answer, 'hang' | { stall: 'before-connection' }> | 'aborted'> {
    const answer = this.script({ at: this.clock.now(), path: String(options.path), names: [] }, this.calls++);
    if (!(answer instanceof Promise) && answer !== 'hang') {
      if ('connectError' in answer) return answer;
      if ('stall' in answer) return aborted.then(() => 'aborted' as const);
    }
    channel('undici:client:sendHeaders').publish({ request: { body: options.body } });
    if (!(answer instanceof Promise) && answer !== 'hang' && 'reset' in answer && answer.reset === 'before-body')
      return answer;
    let bytes: Buffer;
    this.reading++;
    try {
      bytes = Buffer.isBuffer(options.body) ? options.body : await buffer(options.body as Readable);
    } finally {
      this.reading--;
    }
    const names = [...bytes.toString('latin1').matchAll(/filename="([^"]+)"/g)].map((m) => m[1]!);
    this.received.push({ at: this.clock.now(), path: String(options.path), names });
    channel('undici:request:bodySent').publish({ request: { body: options.body } });
    const answered = await answer;
    if (answered === 'hang' || 'stall' in answered) return aborted.then(() => 'aborted' as const);
    return answered;
  }

  override async close(): Promise<void> {}
  override async destroy(): Promise<void> {}
}

/** `count` small files for one entity, a.jpg, b.jpg, …, each its own bytes. */
async function files(count: number): Promise<{ dir: string; names: string[] }> {
  const dir = await tempDir();
  const names = Array.from({ length: count }, (_, i) => `${String.fromCharCode(97 + i)}.jpg`);
  await Promise.all(names.map((name, i) => writeFile(join(dir, name), validContent(name, Buffer.alloc(100 + i, i)))));
  return { dir, names };
}

/** Runs an upload through the scripted dispatcher on the fake clock, moving time on whenever the run waits. */
async function run(
  script: (request: Received, index: number) => Answer | Promise<Answer>,
  options: Partial<UploadOptions> & { paths: string[] },
  during?: (state: { dispatcher: ScriptedDispatcher; clock: FakeClock; events: UploadEvent[] }) => Promise<void>,
) {
  const clock = new FakeClock();
  const dispatcher = new ScriptedDispatcher(clock, script);
  const events: UploadEvent[] = [];
  const started = clock.now();
  let summary: UploadSummary | undefined;
  const done = upload({
    org: 'acme',
    baseUrl: 'http://127.0.0.1:9/',
    apiKey: 'engine-test-key-0123456789',
    entity: 'cust-1',
    rate: 0,
    dispatcher,
    clock,
    onEvent: (e) => events.push(e),
    ...options,
  }).then((s) => (summary = s));
  if (during) await during({ dispatcher, clock, events });
  // Fake time moves only while the run waits for it, never while a body is read from disk (on a
  // loaded machine that takes real time, and a request's timeout must not pass meanwhile); a run
  // that never ends fails the test. Bounded by real time, not by a count of steps: on a loaded
  // machine the check before sending can outlast any number of quick steps, and fake time that
  // stopped moving would leave the run waiting for it.
  const deadline = performance.now() + 15_000;
  while (!summary && performance.now() < deadline) {
    if (dispatcher.reading > 0) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      continue;
    }
    await clock.advance(100);
  }
  expect(summary, 'the run did not end').toBeDefined();
  await done;
  const ofKind = <K extends UploadEvent['event']>(kind: K) =>
    events.filter((e): e is Extract<UploadEvent, { event: K }> => e.event === kind);
  return {
    summary: summary!,
    events,
    ofKind,
    received: dispatcher.received,
    calls: dispatcher.calls,
    elapsed: clock.now() - started,
  };
}

const ok = { status: 201, body: '{}' };
const nameOf = (e: { path: string }) => e.path.split('/').at(-1)!;

/** Waits, on real time (the check before sending reads the disk), for the run to reach a state. */
async function until(condition: () => boolean) {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}

describe('the engine, on fake time with a scripted dispatcher', () => {
  it('starts nothing more once the key is refused: every file sent failed 401, every other one not sent', async () => {
    const { dir } = await files(10);
    const { summary, ofKind, received } = await run(
      () => ({ status: 401, body: '{"error_code":"unauthorized","message":"bad key"}' }),
      { paths: [dir], concurrency: 2 },
    );
    expect(summary.stopped).toBe('auth');
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(received.length).toBeLessThanOrEqual(2); // one per slot at most
    expect(ofKind('failed').map((e) => [e.status, e.error_code])).toEqual(received.map(() => [401, 'unauthorized']));
    expect(summary).toMatchObject({ failed: received.length, not_sent: 10 - received.length, uploaded: 0, total: 10 });
    expect(ofKind('retry')).toHaveLength(0);
  });

  it('stops after the first failed file with --fail-fast: the files before it uploaded, the rest not sent', async () => {
    const { dir } = await files(6);
    const { summary, ofKind, received } = await run(
      (_, i) => (i === 1 ? { status: 400, body: '{"message":"bad file"}' } : ok),
      { paths: [dir], concurrency: 1, failFast: true },
    );
    expect(received.map((r) => r.names)).toEqual([['a.jpg'], ['b.jpg']]);
    expect(summary).toMatchObject({ stopped: 'fail-fast', uploaded: 1, failed: 1, not_sent: 4, total: 6 });
    expect(ofKind('failed').map(nameOf)).toEqual(['b.jpg']);
    expect(ofKind('skipped').map((e) => [nameOf(e), e.reason])).toEqual(
      ['c', 'd', 'e', 'f'].map((n) => [`${n}.jpg`, 'not_sent']),
    );
  });

  it('flags a file possibly_duplicated when a request whose body went out got no answer, and times it out on the fake clock', async () => {
    const { dir } = await files(1);
    const { summary, ofKind, received, elapsed } = await run((_, i) => (i === 0 ? 'hang' : ok), {
      paths: [dir],
      timeout: 30,
    });
    expect(received).toHaveLength(2);
    expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(30_000);
    expect(elapsed).toBeGreaterThanOrEqual(30_000);
    expect(ofKind('retry').map((e) => [e.error_code, e.message])).toEqual([['timeout', 'no answer within 30 s']]);
    expect(ofKind('uploaded')).toEqual([expect.objectContaining({ attempts: 2, possibly_duplicated: true })]);
    expect(summary).toMatchObject({ uploaded: 1, possibly_duplicated: 1 });
  });

  it('does not flag a request that broke before its body went out, and flags one that broke after', async () => {
    const { dir } = await files(2);
    const { ofKind } = await run(
      (_, i) => (i === 0 ? { reset: 'before-body' } : i === 1 ? { reset: 'after-body' } : ok),
      { paths: [dir], concurrency: 1 },
    );
    const uploaded = ofKind('uploaded');
    expect(uploaded.map((e) => [nameOf(e), e.possibly_duplicated ?? false])).toEqual(
      [
        ['a.jpg', false],
        ['b.jpg', true],
      ].sort(),
    );
  });

  it('waits at least 2 s after a 423 before sending again', async () => {
    const { dir } = await files(1);
    const { ofKind, received } = await run(
      (_, i) => (i === 0 ? { status: 423, body: '{"message":"entity locked"}' } : ok),
      { paths: [dir] },
    );
    expect(received).toHaveLength(2);
    expect(received[1]!.at - received[0]!.at).toBeGreaterThanOrEqual(2_000);
    expect(ofKind('retry')[0]).toMatchObject({ status: 423, message: 'entity locked' });
    expect(ofKind('retry')[0]!.delay_ms).toBeGreaterThanOrEqual(2_000);
    expect(ofKind('uploaded')).toHaveLength(1);
  });

  it('holds every start of the run, not only the throttled request, for the Retry-After of a 429', async () => {
    const { dir } = await files(8);
    const { summary, received } = await run(
      (_, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '10' } } : ok),
      { paths: [dir], concurrency: 4 },
    );
    const t0 = received[0]!.at;
    const early = received.filter((r) => r.at < t0 + 10_000);
    // Those already out when the 429 came; nothing started after it until the wait was over.
    expect(early.length).toBeLessThanOrEqual(4);
    expect(received.length).toBe(9);
    expect(received.slice(early.length).every((r) => r.at >= t0 + 10_000)).toBe(true);
    expect(summary).toMatchObject({ uploaded: 8, retries: 1 });
  });

  it('on the first stop lets the requests in flight finish and sends nothing more', async () => {
    const { dir } = await files(5);
    const drain = new AbortController();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const { summary, ofKind, received } = await run(
      () => held.then(() => ok),
      { paths: [dir], concurrency: 2, drain: drain.signal },
      async ({ dispatcher }) => {
        await until(() => dispatcher.received.length === 2);
        drain.abort();
        release();
      },
    );
    expect(received).toHaveLength(2);
    expect(summary).toMatchObject({ stopped: 'interrupted', uploaded: 2, failed: 0, not_sent: 3, total: 5 });
    expect(ofKind('uploaded').every((e) => !e.possibly_duplicated)).toBe(true);
  });

  it('on the second stop cuts the requests in flight: they fail flagged possibly_duplicated, the rest not sent', async () => {
    const { dir } = await files(5);
    const drain = new AbortController();
    const force = new AbortController();
    const { summary, ofKind, received } = await run(
      () => 'hang',
      { paths: [dir], concurrency: 2, drain: drain.signal, signal: force.signal },
      async ({ dispatcher }) => {
        await until(() => dispatcher.received.length === 2);
        drain.abort();
        await settle();
        force.abort();
      },
    );
    expect(received).toHaveLength(2);
    expect(ofKind('failed').map((e) => [e.error_code, e.possibly_duplicated])).toEqual([
      ['interrupted', true],
      ['interrupted', true],
    ]);
    expect(summary).toMatchObject({
      stopped: 'interrupted',
      uploaded: 0,
      failed: 2,
      not_sent: 3,
      possibly_duplicated: 2,
      total: 5,
    });
  });

  it('fails a file removed after the check alone, and sends the rest of its batch', async () => {
    const { dir } = await files(3);
    const { summary, ofKind, received } = await run(() => ok, {
      paths: [dir],
      batch: 3,
      onTotal: () => rmSync(join(dir, 'b.jpg')),
    });
    expect(received.map((r) => r.names)).toEqual([['a.jpg', 'c.jpg']]);
    expect(ofKind('failed')).toEqual([
      expect.objectContaining({ path: expect.stringMatching(/b\.jpg$/), error_code: 'ENOENT', attempts: 0 }),
    ]);
    expect(summary).toMatchObject({ uploaded: 2, failed: 1, total: 3 });
  });
});

describe('the engine when nothing can work, on fake time with a scripted dispatcher', () => {
  const refused = { connectError: 'ECONNREFUSED' };

  it('stops after 8 connections in a row failed before any answer: the files tried failed, every other one not sent', async () => {
    const { dir } = await files(20);
    const { summary, ofKind, calls } = await run(() => refused, { paths: [dir], concurrency: 2 });
    // The eighth failure stops it; the one other slot may have had a request out.
    expect(calls).toBeGreaterThanOrEqual(UNREACHABLE_STREAK);
    expect(calls).toBeLessThanOrEqual(UNREACHABLE_STREAK + 1);
    expect(summary).toMatchObject({
      stopped: 'unreachable',
      stop_cause: { error_code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' },
      uploaded: 0,
      total: 20,
    });
    expect(summary.failed).toBe(ofKind('failed').length);
    expect(summary.failed).toBeLessThanOrEqual(calls);
    expect(summary.not_sent).toBe(20 - summary.failed);
    expect(
      ofKind('skipped').every((e) => e.reason === 'not_sent' && e.message === 'not sent: the API could not be reached'),
    ).toBe(true);
  });

  it('keeps the normal retries once any request has had an answer, however many connections fail after it', async () => {
    const { dir } = await files(10);
    const { summary, calls } = await run((_, i) => (i === 0 || i > UNREACHABLE_STREAK + 4 ? ok : refused), {
      paths: [dir],
      concurrency: 1,
    });
    expect(summary.stopped).toBeUndefined();
    expect(summary).toMatchObject({ uploaded: 10, failed: 0, retries: UNREACHABLE_STREAK + 4 });
    expect(calls).toBe(10 + UNREACHABLE_STREAK + 4);
  });

  it('starts the streak over after a failure of another kind', async () => {
    const { dir } = await files(10);
    // Seven refusals, a reset, seven more: never eight in a row, so every file goes through in the end.
    const { summary } = await run(
      (_, i) => (i < 7 || (i > 7 && i < 15) ? refused : i === 7 ? { reset: 'before-body' } : ok),
      { paths: [dir], concurrency: 1 },
    );
    expect(summary.stopped).toBeUndefined();
    expect(summary).toMatchObject({ uploaded: 10, failed: 0, retries: 15 });
  });

  it('waits out a connection this machine had no descriptor for (EMFILE): it neither fails a file nor counts toward the stop', async () => {
    const { dir } = await files(10);
    const { summary, ofKind } = await run((_, i) => (i < 3 * UNREACHABLE_STREAK ? { connectError: 'EMFILE' } : ok), {
      paths: [dir],
      concurrency: 2,
    });
    expect(summary.stopped).toBeUndefined();
    expect(summary).toMatchObject({ uploaded: 10, failed: 0, retries: 0 });
    const warnings = ofKind('warning').filter((e) => e.message.startsWith('the limit on open files'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/was reached \(EMFILE\); files wait for others to close/);
  });

  it('counts any failure before the request reached a connection, whatever its code (TLS failing through a proxy, say)', async () => {
    const { dir } = await files(20);
    const { summary, calls } = await run(() => ({ connectError: 'proxy_tls' }), { paths: [dir], concurrency: 2 });
    expect(calls).toBeGreaterThanOrEqual(UNREACHABLE_STREAK);
    expect(calls).toBeLessThanOrEqual(UNREACHABLE_STREAK + 1);
    expect(summary).toMatchObject({
      stopped: 'unreachable',
      stop_cause: { error_code: 'proxy_tls' },
      uploaded: 0,
      total: 20,
    });
    expect(summary.failed + summary.not_sent).toBe(20);
  });

  it('counts an attempt cut at its timeout before its request reached a connection, and ends each one at --timeout on the fake clock', async () => {
    const { dir } = await files(20);
    const { summary, calls, elapsed, ofKind } = await run(() => ({ stall: 'before-connection' }), {
      paths: [dir],
      concurrency: 2,
      timeout: 2,
    });
    expect(calls).toBeGreaterThanOrEqual(UNREACHABLE_STREAK);
    expect(calls).toBeLessThanOrEqual(UNREACHABLE_STREAK + 1);
    expect(summary).toMatchObject({
      stopped: 'unreachable',
      stop_cause: { error_code: 'timeout' },
      uploaded: 0,
      total: 20,
    });
    expect(ofKind('retry').every((e) => e.error_code === 'timeout' && e.message === 'no answer within 2 s')).toBe(true);
    // Four rounds of two attempts, each one cut at 2 s.
    expect(elapsed).toBeGreaterThanOrEqual(4 * 2_000);
  });

  it('does not count a request that went out on a connection and got no answer: those are retried as usual', async () => {
    const { dir } = await files(2);
    const { summary, ofKind, calls } = await run(() => ({ reset: 'before-body' }), {
      paths: [dir],
      concurrency: 1,
      retries: UNREACHABLE_STREAK,
    });
    expect(summary.stopped).toBeUndefined();
    expect(calls).toBe(2 * (UNREACHABLE_STREAK + 1));
    expect(ofKind('failed').map((e) => e.error_code)).toEqual(['UND_ERR_SOCKET', 'UND_ERR_SOCKET']);
  });

  it('fails a file at once on a certificate error, never retried, and stops the run: the rest not sent', async () => {
    const { dir } = await files(5);
    const { summary, ofKind, calls } = await run(() => ({ connectError: 'SELF_SIGNED_CERT_IN_CHAIN' }), {
      paths: [dir],
      concurrency: 1,
    });
    expect(calls).toBe(1);
    expect(ofKind('retry')).toHaveLength(0);
    expect(ofKind('failed')).toEqual([
      expect.objectContaining({
        path: expect.stringMatching(/a\.jpg$/),
        status: null,
        error_code: 'SELF_SIGNED_CERT_IN_CHAIN',
        attempts: 1,
      }),
    ]);
    expect(summary).toMatchObject({
      stopped: 'certificate',
      stop_cause: { error_code: 'SELF_SIGNED_CERT_IN_CHAIN' },
      failed: 1,
      not_sent: 4,
      total: 5,
    });
  });
});

describe('the engine given a request it cannot make', () => {
  it('fails that file with the reason before any write-ahead record, and sends the others', async () => {
    // preflight refuses such an id; the engine, fed directly, must still not crash or journal a request never sent.
    const { dir } = await files(2);
    const planned = (name: string, entityId: string): PlannedFile => ({
      path: name,
      absPath: join(dir, name),
      name,
      entityId,
      mediaTypeSource: 'none',
      bytes: statSync(join(dir, name)).size,
      contentType: 'image/jpeg',
    });
    async function* items(): AsyncGenerator<Checked> {
      yield { kind: 'file', file: planned('a.jpg', 'cust-\ud800') };
      yield { kind: 'file', file: planned('b.jpg', 'cust-2') };
    }
    const urls: string[] = [];
    const transport: Transport = {
      put: (url) => {
        urls.push(url);
        return Promise.resolve({ status: 201, headers: {}, errorCode: null, message: '' });
      },
      reached: () => true,
      bodySent: () => true,
      unconnected: (ms) => ({ code: 'timeout', message: `no answer within ${ms / 1000} s` }),
      reusesBodies: false,
      close: async () => {},
    };
    const journalPath = join(dir, 'journal.jsonl');
    const journal = await Journal.open(journalPath);
    const events: UploadEvent[] = [];
    const sink = new OutcomeSink({ journal, onEvent: (e) => events.push(e) });
    const reader = new ReaderThreads(1);
    const settings = {
      apiRoot: 'http://127.0.0.1:9/v1',
      org: 'acme',
      runId: 'run-1',
      format: 'multipart',
      concurrency: 1,
      rate: 0,
      batch: 1,
      retry: DEFAULT_RETRY_POLICY,
      timeoutMs: 1_000,
      failFast: false,
      allowDuplicates: true,
      resendUnknown: true,
      redact: createRedactor('k-0123456789'),
      cwd: dir,
      journal,
    } as const;
    try {
      const tally = await transfer(items(), settings, {
        transport,
        reader,
        clock: new FakeClock(),
        sink,
        scratch: await scratch(),
      });
      expect(tally).toMatchObject({ uploaded: 1, failed: 1 });
    } finally {
      await sink.close();
      await reader.close();
    }
    expect(urls).toEqual(['http://127.0.0.1:9/v1/acme/entities/cust-2/link-media']);
    expect(events.find((e) => e.event === 'failed')).toMatchObject({
      path: 'a.jpg',
      status: null,
      error_code: 'invalid_request',
      attempts: 0,
      message: expect.stringMatching(/^cannot make the request: URI malformed/),
    });
    const records = (await readFile(journalPath, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { path: string; outcome: string });
    expect(records.map((r) => [r.path, r.outcome])).toEqual([
      ['b.jpg', 'sending'],
      ['b.jpg', 'uploaded'],
    ]);
  });
});
