import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNREACHABLE_STREAK } from '../../src/core/transfer/connect-errors.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, runBin, sha256, tempDir } from '../helpers.js';
import { connectProxyTo, PROXY_PASSWORD } from '../connect-proxy.js';

const KEY = 'network-e2e-key-0123456789';
const ORG = 'acme';

let certs: { key: string; cert: string; certPath: string };
let offline: string;
// Kept for the whole file (tempDir's folders go after each test).
let shared: string;

beforeAll(async () => {
  const dir = (shared = await mkdtemp(join(tmpdir(), 'u21-media-network-')));
  // A certificate for api.unit21.com made here, trusted only where the test says so.
  const [keyPath, certPath] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=api.unit21.com',
    '-addext',
    'subjectAltName=DNS:api.unit21.com',
  ]);
  certs = { key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8'), certPath };
  // Loaded into the binary with --import: every DNS lookup but localhost fails, so nothing it does can reach the internet.
  offline = join(dir, 'offline-dns.mjs');
  await writeFile(
    offline,
    `import dns from 'node:dns';
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (hostname === 'localhost') return lookup.call(this, hostname, options, callback);
  const done = typeof options === 'function' ? options : callback;
  process.nextTick(done, Object.assign(new Error('getaddrinfo ENOTFOUND ' + hostname), { code: 'ENOTFOUND', hostname }));
};
`,
  );
}, 30_000);

afterAll(() => rm(shared, { recursive: true, force: true }));

/** An https sandbox on 127.0.0.1 with the test's certificate for api.unit21.com. */
const tlsSandbox = async (): Promise<Sandbox> =>
  closeAfter(await startSandbox({ apiKey: KEY, org: ORG, tls: { key: certs.key, cert: certs.cert } }));

/** The proxy in front of the sandbox, as if api.unit21.com:443 lived there. */
const proxyTo = (sandbox: Sandbox) => connectProxyTo(Number(new URL(sandbox.url).port));

/** `count` small files, each its own bytes. */
async function files(count: number): Promise<string> {
  const dir = await tempDir();
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      writeFile(join(dir, `doc-${String(i).padStart(2, '0')}.pdf`), Buffer.from(`%PDF-1.4 file ${i}\n%%EOF\n`)),
    ),
  );
  return dir;
}

const upload = (dir: string, ...more: string[]) => [
  'upload',
  dir,
  '--org',
  ORG,
  '--entity',
  'cust-1',
  '--no-infer',
  ...more,
];
const env = (extra: Record<string, string> = {}) => ({
  U21_API_KEY: KEY,
  NODE_OPTIONS: `--import=${pathToFileURL(offline).href}`,
  ...extra,
});
const summaryOf = (events: Array<Record<string, unknown>>) => events.at(-1)!;

describe('proxies, certificates and unreachable hosts (built binary)', () => {
  it('uploads through an HTTPS_PROXY with credentials: the proxy tunnels CONNECT api.unit21.com:443, and the password is never printed', async () => {
    const sandbox = await tlsSandbox();
    const { url, log } = await proxyTo(sandbox);
    const dir = await files(5);
    const report = join(await tempDir(), 'report.json');
    const result = await runBin(upload(dir, '--env', 'prod1', '--json', '--report', report), {
      cwd: dir,
      env: env({ HTTPS_PROXY: url(), NODE_EXTRA_CA_CERTS: certs.certPath }),
    });
    expect(result.stderr).toBe(
      `u21-media: sending to https://api.unit21.com/v1 · org acme · no config file · via proxy http://***@${new URL(url()).host}\n`,
    );
    expect(result.code).toBe(0);
    expect(summaryOf(result.events)).toMatchObject({
      event: 'summary',
      uploaded: 5,
      failed: 0,
      total: 5,
      host: 'https://api.unit21.com/v1',
      proxy: `http://***@${new URL(url()).host}`,
    });
    expect(sandbox.stored).toHaveLength(5);
    for (const media of sandbox.stored) expect(media.sha256).toBe(await sha256(join(dir, media.name)));
    expect(log.connects.length).toBeGreaterThanOrEqual(1);
    expect(new Set(log.connects)).toEqual(new Set(['CONNECT api.unit21.com:443']));
    expect(new Set(log.credentials)).toEqual(new Set([`alice:${PROXY_PASSWORD}`]));
    const reportText = await readFile(report, 'utf8');
    for (const text of [result.stdout, result.stderr, reportText]) {
      expect(text).not.toContain(PROXY_PASSWORD);
      expect(text).not.toContain(KEY);
    }
  });

  it('--proxy wins over HTTPS_PROXY', async () => {
    const sandbox = await tlsSandbox();
    const { url, log } = await proxyTo(sandbox);
    const dir = await files(2);
    const result = await runBin(upload(dir, '--env', 'prod1', '--json', '--proxy', url()), {
      cwd: dir,
      env: env({ HTTPS_PROXY: 'http://127.0.0.1:9', NODE_EXTRA_CA_CERTS: certs.certPath }),
    });
    expect(result.code).toBe(0);
    expect(sandbox.stored).toHaveLength(2);
    expect(log.connects[0]).toBe('CONNECT api.unit21.com:443');
  });

  it('goes direct with NO_PROXY=api.unit21.com: the proxy sees nothing, and with no DNS the run stops early as unreachable', async () => {
    const sandbox = await tlsSandbox();
    const { url, log } = await proxyTo(sandbox);
    const dir = await files(30);
    const result = await runBin(upload(dir, '--env', 'prod1', '--json', '--verbose', '--concurrency', '2'), {
      cwd: dir,
      env: env({ HTTPS_PROXY: url(), NO_PROXY: 'api.unit21.com', NODE_EXTRA_CA_CERTS: certs.certPath }),
    });
    expect(result.code).toBe(1);
    expect(log.connects).toEqual([]);
    expect(summaryOf(result.events)).toMatchObject({
      stopped: 'unreachable',
      stop_cause: { error_code: 'ENOTFOUND' },
      proxy: null,
      uploaded: 0,
      total: 30,
    });
    expect(result.events.filter((e) => e.event === 'attempt').length).toBeLessThanOrEqual(UNREACHABLE_STREAK + 1);
    expect(result.stderr).toContain(
      'u21-media: error: cannot reach https://api.unit21.com/v1 (getaddrinfo ENOTFOUND api.unit21.com)',
    );
    expect(sandbox.requests).toEqual([]);
  });

  it('stops early when the host refuses every connection: exit 1, a few attempts, every other file not sent, failures grouped', async () => {
    const closed = await closedPort();
    const dir = await files(30);
    const base = ['--base-url', `http://127.0.0.1:${closed}`, '--concurrency', '2'];
    const json = await runBin(upload(dir, ...base, '--json', '--verbose'), { cwd: dir, env: env() });
    expect(json.code).toBe(1);
    const summary = summaryOf(json.events);
    expect(summary).toMatchObject({
      stopped: 'unreachable',
      stop_cause: { error_code: 'ECONNREFUSED' },
      uploaded: 0,
      total: 30,
    });
    const attempts = json.events.filter((e) => e.event === 'attempt').length;
    expect(attempts).toBeGreaterThanOrEqual(UNREACHABLE_STREAK);
    expect(attempts).toBeLessThanOrEqual(UNREACHABLE_STREAK + 1);
    const failed = json.events.filter((e) => e.event === 'failed');
    const notSent = json.events.filter((e) => e.event === 'skipped' && e.reason === 'not_sent');
    expect(summary.failed).toBe(failed.length);
    expect(summary.not_sent).toBe(notSent.length);
    expect(failed.length + notSent.length).toBe(30);

    // Without retries every attempt is a file's last, and each failure is alike: three lines, then a count.
    const human = await runBin(upload(dir, ...base, '--retries', '0'), { cwd: dir, env: env() });
    expect(human.code).toBe(1);
    expect(human.stderr.split('\n').filter((line) => line.startsWith('✖'))).toHaveLength(3);
    expect(human.stderr).toMatch(
      new RegExp(`… and \\d+ more failed with the same error \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${closed}\\)`),
    );
    expect(human.stderr).toContain(
      `u21-media: error: cannot reach http://127.0.0.1:${closed}/v1 (connect ECONNREFUSED 127.0.0.1:${closed}); no request got an answer`,
    );
  });

  it('stops at once on a certificate it does not trust: exit 1, stopped "certificate", and a hint naming NODE_EXTRA_CA_CERTS', async () => {
    const sandbox = await tlsSandbox();
    const { url } = await proxyTo(sandbox);
    const dir = await files(10);
    const json = await runBin(upload(dir, '--env', 'prod1', '--json', '--concurrency', '1'), {
      cwd: dir,
      env: env({ HTTPS_PROXY: url() }),
    });
    expect(json.code).toBe(1);
    expect(summaryOf(json.events)).toMatchObject({
      stopped: 'certificate',
      stop_cause: { error_code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      failed: 1,
      not_sent: 9,
      uploaded: 0,
    });
    expect(json.events.filter((e) => e.event === 'retry')).toEqual([]);
    expect(json.stderr).toContain(
      'u21-media: error: the TLS certificate of api.unit21.com is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT',
    );
    expect(json.stderr).toContain(
      'hint: if a proxy or gateway on your network re-signs TLS, point NODE_EXTRA_CA_CERTS at its CA certificate',
    );
    expect(sandbox.stored).toEqual([]);
    expect(json.stdout + json.stderr).not.toContain(PROXY_PASSWORD);
  });

  it('stops early when the proxy refuses the credentials, and does not print them', async () => {
    const sandbox = await tlsSandbox();
    const { url, log } = await proxyTo(sandbox);
    const dir = await files(20);
    const wrong = 'wr0ng-pass-xyz';
    const result = await runBin(
      upload(dir, '--env', 'prod1', '--json', '--concurrency', '2', '--proxy', url(`alice:${wrong}`)),
      { cwd: dir, env: env({ NODE_EXTRA_CA_CERTS: certs.certPath }) },
    );
    expect(result.code).toBe(1);
    expect(summaryOf(result.events)).toMatchObject({
      stopped: 'unreachable',
      stop_cause: { error_code: 'proxy_refused' },
      uploaded: 0,
    });
    expect(log.credentials.length).toBeLessThanOrEqual(UNREACHABLE_STREAK + 1);
    expect(result.stderr).toContain(`cannot reach api.unit21.com through the proxy http://***@${new URL(url()).host}`);
    expect(result.stdout + result.stderr).not.toContain(wrong);
  });

  it('refuses a proxy that is not an http(s) URL before sending: exit 2, naming the variable', async () => {
    const dir = await files(1);
    const result = await runBin(upload(dir, '--env', 'prod1'), {
      cwd: dir,
      env: env({ HTTPS_PROXY: 'socks5://user:pw-secret@127.0.0.1:1080' }),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^u21-media: error: HTTPS_PROXY: unsupported proxy protocol "socks5:"/);
    expect(result.stderr).not.toContain('pw-secret');
  });
});

/** A loopback port nothing listens on: taken, then let go. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
