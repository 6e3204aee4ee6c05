import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { UNREACHABLE_STREAK } from '../../src/core/transfer/connect-errors.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, runBin, type CliResult } from '../helpers.js';
import { expectAccountedFor, pdfs, startBin } from './attack-helpers.js';

const KEY = 'hostile-proxy-key-0123456789';
const PASSWORD = 'pr0xy-s3cret-pw';
/** Resolved by the proxy alone: the tool never looks it up, and no DNS anywhere knows it. */
const API_HOST = 'api.u21-proxy-test.invalid';
const FILES = 10;
const CONCURRENCY = 4;

/**
 * How the proxy misbehaves once a CONNECT has come in whole: `silent` never answers it;
 * `garbage` answers bytes that are not HTTP; `hang-up` closes the connection; `plaintext`
 * answers 200 and tunnels to a plain HTTP server (the sandbox), so TLS meets an HTTP answer;
 * `stall-tls` answers 200 and then says nothing.
 */
type Behaviour = 'silent' | 'garbage' | 'hang-up' | 'plaintext' | 'stall-tls';

interface HostileProxy {
  /** With credentials, as given to --proxy. */
  url: string;
  /** As the tool may print it: credentials masked. */
  shown: string;
  /** The request line of every CONNECT that came in. */
  connects: string[];
  /** Resolves once `count` CONNECTs have come in. */
  connected(count: number): Promise<void>;
}

/** A plain TCP server that plays an HTTP CONNECT proxy which misbehaves; `behind` is where `plaintext` tunnels to. */
async function hostileProxy(behaviour: Behaviour, behind: Sandbox): Promise<HostileProxy> {
  const connects: string[] = [];
  const waiting: Array<{ count: number; resolve: () => void }> = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket)).on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      connects.push(head.split('\r\n')[0]!);
      for (const w of waiting.splice(0)) {
        if (connects.length >= w.count) w.resolve();
        else waiting.push(w);
      }
      if (behaviour === 'garbage') socket.write('SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 nothing like HTTP\r\n\r\n');
      if (behaviour === 'hang-up') socket.destroy();
      if (behaviour === 'plaintext' || behaviour === 'stall-tls')
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (behaviour === 'plaintext') {
        const upstream = connect(Number(new URL(behind.url).port), '127.0.0.1');
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream)).on('error', () => socket.destroy());
        socket.pipe(upstream).pipe(socket);
      }
    };
    socket.on('data', onData);
  });
  const port = await listen(server);
  closeAfter({
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  });
  return {
    url: `http://alice:${PASSWORD}@127.0.0.1:${port}`,
    shown: `http://***@127.0.0.1:${port}`,
    connects,
    connected: (count) =>
      new Promise<void>((resolve) => (connects.length >= count ? resolve() : waiting.push({ count, resolve }))),
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** The API the proxy would lead to: plain HTTP on loopback, so only `plaintext` reaches it (and TLS fails there). */
const sandbox = async () => closeAfter(await startSandbox({ apiKey: KEY, org: 'acme' }));

const uploadVia = (dir: string, proxy: HostileProxy, ...more: string[]) => [
  'upload',
  dir,
  '--org',
  'acme',
  '--entity',
  'cust-1',
  '--base-url',
  `https://${API_HOST}`,
  '--proxy',
  proxy.url,
  '--concurrency',
  String(CONCURRENCY),
  '--no-journal',
  '--json',
  '--verbose',
  ...more,
];

/**
 * The run stopped as unreachable on its own: exit 1, every file accounted for, no more
 * attempts than the streak and the requests then in flight, each one CONNECT at most, and one
 * line naming the API's host, the proxy (masked) and the cause.
 */
function expectStoppedUnreachable(
  run: CliResult,
  proxy: HostileProxy,
  cause: { code: string; message: string | RegExp },
) {
  expect(run.code, run.stderr).toBe(1);
  const summary = run.events.at(-1)!;
  expect(summary).toMatchObject({
    event: 'summary',
    stopped: 'unreachable',
    stop_cause: {
      error_code: cause.code,
      message: cause.message instanceof RegExp ? expect.stringMatching(cause.message) : cause.message,
    },
    uploaded: 0,
    total: FILES,
    proxy: proxy.shown,
  });
  expectAccountedFor(run.events, FILES);
  const failed = run.events.filter((e) => e.event === 'failed');
  const notSent = run.events.filter((e) => e.event === 'skipped' && e.reason === 'not_sent');
  expect([summary.failed, summary.not_sent]).toEqual([failed.length, notSent.length]);
  expect(failed.length + notSent.length).toBe(FILES);
  const attempts = run.events.filter((e) => e.event === 'attempt').length;
  expect(attempts).toBeGreaterThanOrEqual(UNREACHABLE_STREAK);
  expect(attempts).toBeLessThan(UNREACHABLE_STREAK + CONCURRENCY);
  // A dead proxy is not asked again file by file and retry by retry.
  expect(proxy.connects.length).toBeGreaterThanOrEqual(UNREACHABLE_STREAK);
  expect(proxy.connects.length).toBeLessThanOrEqual(attempts);
  expect(new Set(proxy.connects)).toEqual(new Set([`CONNECT ${API_HOST}:443 HTTP/1.1`]));
  const line = run.stderr.split('\n').find((l) => l.startsWith('u21-media: error: cannot reach'));
  expect(line, run.stderr).toBeDefined();
  const named = `u21-media: error: cannot reach ${API_HOST} through the proxy ${proxy.shown} (${cause.code}: `;
  expect(line!.startsWith(named), line).toBe(true);
  expect(line!.slice(named.length)).toMatch(cause.message);
  expect(run.stdout + run.stderr).not.toContain(PASSWORD);
}

describe('a proxy that accepts the connection and never answers CONNECT', () => {
  it('with --timeout 1 the run ends by itself: exit 1, stopped unreachable after the streak, naming the proxy and that it did not answer CONNECT', async () => {
    const api = await sandbox();
    const proxy = await hostileProxy('silent', api);
    const dir = await pdfs(FILES);
    const run = await runBin(uploadVia(dir, proxy, '--timeout', '1'), { cwd: dir, env: { U21_API_KEY: KEY } });
    expectStoppedUnreachable(run, proxy, {
      code: 'proxy_timeout',
      message: 'the proxy did not answer CONNECT within 1 s',
    });
    expect(api.requests).toEqual([]);
    expect(api.stored).toEqual([]);
  }, 30_000);

  it('with a long --timeout, two Ctrl-C end the run at once: exit 130, the stalled uploads cut, the rest not sent', async () => {
    const api = await sandbox();
    const proxy = await hostileProxy('silent', api);
    const dir = await pdfs(FILES);
    const run = startBin(uploadVia(dir, proxy, '--timeout', '120'), { cwd: dir, env: { U21_API_KEY: KEY } });
    // Every slot is waiting for the proxy's answer.
    await proxy.connected(CONCURRENCY);
    process.kill(run.pid, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 300));
    process.kill(run.pid, 'SIGINT');
    const ended = await run.done;
    expect(ended.code, ended.stderr).toBe(130);
    expect(ended.stderr).toContain('SIGINT: aborting the uploads in flight');
    expectAccountedFor(run.events, FILES);
    const cut = run.events.filter((e) => e.event === 'failed');
    expect(cut.map((e) => e.error_code)).toEqual(Array.from({ length: CONCURRENCY }, () => 'interrupted'));
    expect(run.events.at(-1)).toMatchObject({
      stopped: 'interrupted',
      uploaded: 0,
      failed: CONCURRENCY,
      not_sent: FILES - CONCURRENCY,
      possibly_duplicated: 0,
    });
    expect(proxy.connects).toHaveLength(CONCURRENCY);
    expect(api.stored).toEqual([]);
    // The test's own timeout is under the 10 s a connection is given: the process ended because
    // the cut reached the stalled connections, not because they gave up by themselves.
  }, 8_000);
});

describe('a proxy that answers CONNECT with something that is not HTTP', () => {
  it('stops the run after the streak, saying the proxy answered something that is not HTTP', async () => {
    const api = await sandbox();
    const proxy = await hostileProxy('garbage', api);
    const dir = await pdfs(FILES);
    const run = await runBin(uploadVia(dir, proxy, '--timeout', '5'), { cwd: dir, env: { U21_API_KEY: KEY } });
    expectStoppedUnreachable(run, proxy, {
      code: 'proxy_bad_answer',
      message: 'the proxy answered something that is not HTTP (it began "SSH-2.0-OpenSSH_9.6")',
    });
    expect(api.stored).toEqual([]);
  }, 30_000);
});

describe('a proxy that hangs up on CONNECT', () => {
  it('stops the run after the streak, saying the proxy closed the connection without answering', async () => {
    const api = await sandbox();
    const proxy = await hostileProxy('hang-up', api);
    const dir = await pdfs(FILES);
    const run = await runBin(uploadVia(dir, proxy, '--timeout', '5'), { cwd: dir, env: { U21_API_KEY: KEY } });
    expectStoppedUnreachable(run, proxy, {
      code: 'proxy_closed',
      message: /^the proxy closed the connection without answering CONNECT/,
    });
    expect(api.stored).toEqual([]);
  }, 30_000);
});

describe('a proxy whose tunnel does not carry TLS', () => {
  it('answers 200, then plain HTTP comes back through the tunnel: the run stops after the streak, naming TLS through the proxy', async () => {
    const api = await sandbox();
    const proxy = await hostileProxy('plaintext', api);
    const dir = await pdfs(FILES);
    const run = await runBin(uploadVia(dir, proxy, '--timeout', '5'), { cwd: dir, env: { U21_API_KEY: KEY } });
    expectStoppedUnreachable(run, proxy, { code: 'proxy_tls', message: /^TLS through the proxy failed: / });
    // The plain HTTP server behind it saw only TLS handshakes, never a request.
    expect(api.requests).toEqual([]);
    expect(api.stored).toEqual([]);
  }, 30_000);

  it('answers 200, then says nothing: each attempt ends at --timeout, and the run stops naming the stalled TLS handshake', async () => {
    const api = await sandbox();
    const proxy = await hostileProxy('stall-tls', api);
    const dir = await pdfs(FILES);
    const run = await runBin(uploadVia(dir, proxy, '--timeout', '1'), { cwd: dir, env: { U21_API_KEY: KEY } });
    expectStoppedUnreachable(run, proxy, {
      code: 'proxy_tls',
      message: 'TLS through the proxy did not complete within 1 s',
    });
    expect(api.stored).toEqual([]);
  }, 30_000);
});

describe('a host that accepts the connection and never answers the TLS handshake (no proxy)', () => {
  it('each attempt ends at --timeout, and the run stops naming the host and the stalled handshake', async () => {
    const sockets = new Set<Socket>();
    let connections = 0;
    const silent = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket)).on('error', () => {});
    });
    const port = await listen(silent);
    closeAfter({
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      },
    });
    const dir = await pdfs(FILES);
    const run = await runBin(
      [
        'upload',
        dir,
        '--org',
        'acme',
        '--entity',
        'cust-1',
        '--base-url',
        `https://127.0.0.1:${port}`,
        '--concurrency',
        String(CONCURRENCY),
        '--no-journal',
        '--json',
        '--verbose',
        '--timeout',
        '1',
      ],
      { cwd: dir, env: { U21_API_KEY: KEY } },
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.events.at(-1)).toMatchObject({
      stopped: 'unreachable',
      stop_cause: {
        error_code: 'tls_timeout',
        message: `the TLS handshake with 127.0.0.1:${port} did not complete within 1 s`,
      },
      uploaded: 0,
      total: FILES,
      proxy: null,
    });
    expectAccountedFor(run.events, FILES);
    const attempts = run.events.filter((e) => e.event === 'attempt').length;
    expect(attempts).toBeLessThan(UNREACHABLE_STREAK + CONCURRENCY);
    expect(connections).toBeLessThanOrEqual(attempts);
    expect(run.stderr).toContain(
      `u21-media: error: cannot reach https://127.0.0.1:${port}/v1 (tls_timeout: the TLS handshake with 127.0.0.1:${port} did not complete within 1 s)`,
    );
  }, 30_000);
});
