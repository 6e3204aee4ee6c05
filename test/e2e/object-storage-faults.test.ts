import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/server.js';
import { closeAfter, of, runBin, tempDir } from '../helpers.js';
import { connectProxyTo, PROXY_PASSWORD } from '../connect-proxy.js';
import { faultyS3, largePdf, s3Env, startS3, target } from '../s3-server.js';

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** Whether a request to the S3 server is the send's read of `name`: the whole object, not the check's first 4096 bytes or its tail. */
const sendRead = (req: { url?: string; headers: Record<string, unknown> }, name: string, body: string) =>
  req.url!.includes(name) && req.headers.range === `bytes=0-${body.length - 1}`;

describe('faults on the storage side (built binary, real S3 server on loopback)', () => {
  it('fails an object deleted between its check and its send, saying so, and sends the others (exit 1)', async () => {
    const s3 = await startS3(['kyc']);
    await s3.put('kyc', 'docs/statement.pdf', largePdf('a'));
    await s3.put('kyc', 'docs/other.pdf', largePdf('b'));
    const proxy = await faultyS3(s3.endpoint, async (req) => {
      if (sendRead(req, 'statement.pdf', largePdf('a'))) await s3.remove('kyc', 'docs/statement.pdf');
      return undefined;
    });
    const server = closeAfter(await startSandbox());
    const result = await runBin(['upload', 's3://kyc/docs/', '--entity', 'cust-1', ...target(server)], {
      cwd: await tempDir(),
      env: { ...s3Env(proxy.endpoint), U21_API_KEY: server.apiKey },
    });
    expect(result.code).toBe(1);
    expect(of(result.events, 'failed')).toEqual([
      expect.objectContaining({
        path: 's3://kyc/docs/statement.pdf',
        error_code: 'NoSuchKey',
        message: expect.stringContaining('the object was deleted after it was listed (NoSuchKey), so it was not sent'),
      }),
    ]);
    expect(server.stored.map((m) => [m.name, m.sha256])).toEqual([['other.pdf', sha(largePdf('b'))]]);
  });

  it('names a key the credentials may not read (403 AccessDenied) with the permission it needs: exit 2, nothing sent', async () => {
    const s3 = await startS3(['kyc']);
    await s3.put('kyc', 'docs/secret.pdf', largePdf('s'));
    await s3.put('kyc', 'docs/other.pdf', largePdf('o'));
    // s3rver has no per-object policies: the proxy refuses every GET of one key, as S3 does for a key the role may not read.
    const proxy = await faultyS3(s3.endpoint, (req) =>
      req.method === 'GET' && req.url!.includes('secret.pdf') ? 'denied' : undefined,
    );
    const server = closeAfter(await startSandbox());
    const result = await runBin(
      ['upload', 's3://kyc/docs/', '--entity', 'cust-1', ...target(server).filter((a) => a !== '--json')],
      { cwd: await tempDir(), env: { ...s3Env(proxy.endpoint), U21_API_KEY: server.apiKey } },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      's3://kyc/docs/secret.pdf: access denied reading the object (AccessDenied); the credentials in use need s3:GetObject on it',
    );
    // Denied once: not retried as if it might pass.
    expect(proxy.seen.denied).toBe(1);
    expect(server.requests).toHaveLength(0);
  });

  it('gives up a read that stalls mid-object after --timeout, reads it again, and uploads every object once', async () => {
    const s3 = await startS3(['kyc']);
    for (let i = 0; i < 3; i++) await s3.put('kyc', `docs/statement_${i}.pdf`, largePdf(String(i)));
    let stalled = false;
    const proxy = await faultyS3(s3.endpoint, (req) => {
      if (stalled || !sendRead(req, 'statement_1.pdf', largePdf('1'))) return undefined;
      stalled = true;
      return 'stall';
    });
    const server = closeAfter(await startSandbox());
    const result = await runBin(
      ['upload', 's3://kyc/docs/', '--entity', 'cust-1', '--timeout', '1', ...target(server)],
      { cwd: await tempDir(), env: { ...s3Env(proxy.endpoint), U21_API_KEY: server.apiKey } },
    );
    expect(result.code).toBe(0);
    expect(proxy.seen.stall).toBe(1);
    expect(server.stored.map((m) => [m.name, m.sha256]).sort()).toEqual(
      [0, 1, 2].map((i) => [`statement_${i}.pdf`, sha(largePdf(String(i)))]),
    );
  });
});

/** A store's name that is not loopback (so the proxy rules apply to it), found only by the binary's own DNS hook. */
const STORE_HOST = 's3.example.test';

/**
 * A module the binary is started with: STORE_HOST resolves to 127.0.0.1 and every other name
 * but localhost fails, so nothing the run does can reach beyond loopback.
 */
async function loopbackDns(): Promise<string> {
  const file = join(await tempDir(), 'dns.mjs');
  await writeFile(
    file,
    `import dns from 'node:dns';
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  const done = typeof options === 'function' ? options : callback;
  if (hostname === 'localhost') return lookup.call(this, hostname, options, callback);
  if (hostname === ${JSON.stringify(STORE_HOST)}) return typeof options === 'object' && options.all ? process.nextTick(done, null, [{ address: '127.0.0.1', family: 4 }]) : process.nextTick(done, null, '127.0.0.1', 4);
  process.nextTick(done, Object.assign(new Error('getaddrinfo ENOTFOUND ' + hostname), { code: 'ENOTFOUND', hostname }));
};
`,
  );
  return pathToFileURL(file).href;
}

describe('HTTP_PROXY / HTTPS_PROXY and NO_PROXY for the bucket (built binary)', () => {
  it("sends the store's requests through the proxy the variables name, never printing its password, and direct when NO_PROXY names the store's host", async () => {
    const s3 = await startS3(['kyc']);
    for (let i = 0; i < 3; i++) await s3.put('kyc', `docs/statement_${i}.pdf`, largePdf(String(i)));
    const port = new URL(s3.endpoint).port;
    const { url: proxyUrl, log } = await connectProxyTo(Number(port));
    const [url, connects] = [proxyUrl(), log.connects];
    const server = closeAfter(await startSandbox());
    const dns = await loopbackDns();
    const cwd = await tempDir();
    const run = (extra: Record<string, string>) =>
      runBin(['upload', 's3://kyc/docs/', '--entity', 'cust-1', ...target(server)], {
        cwd,
        env: {
          ...s3Env(`http://${STORE_HOST}:${port}`),
          U21_API_KEY: server.apiKey,
          NODE_OPTIONS: `--import=${dns}`,
          ...extra,
        },
      });

    // An http:// store goes by HTTP_PROXY (as curl does); Unit21's loopback sandbox goes direct, as always.
    // With the proxy agent's own debug output on, too: it names the proxy, never its password.
    const proxied = await run({ HTTP_PROXY: url, DEBUG: 'https-proxy-agent,agent-base' });
    expect(proxied.code).toBe(0);
    expect(new Set(connects)).toEqual(new Set([`CONNECT ${STORE_HOST}:${port}`]));
    expect(proxied.stderr).toContain('HttpsProxyAgent');
    // The first line says the bucket's requests go through the proxy, its credentials masked.
    expect(proxied.stderr).toContain(`s3 via proxy http://***@127.0.0.1:`);
    expect(proxied.stdout + proxied.stderr).not.toContain(PROXY_PASSWORD);
    expect(server.stored.map((m) => [m.name, m.sha256]).sort()).toEqual(
      [0, 1, 2].map((i) => [`statement_${i}.pdf`, sha(largePdf(String(i)))]),
    );

    connects.length = 0;
    const direct = await run({ HTTP_PROXY: url, NO_PROXY: `localhost,.example.test` });
    expect(direct.code).toBe(0);
    expect(connects).toEqual([]);
    expect(of(direct.events, 'uploaded')).toHaveLength(3);
  });

  it('a run of local files does not look at AWS_ENDPOINT_URL_S3 or at the proxy for a bucket', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'statement.pdf'), largePdf('local'));
    const server = closeAfter(await startSandbox());
    const result = await runBin(
      ['upload', dir, '--entity', 'cust-1', ...target(server).filter((a) => a !== '--json')],
      {
        cwd: await tempDir(),
        env: {
          U21_API_KEY: server.apiKey,
          AWS_ENDPOINT_URL_S3: 'http://minio.example.test:9000/some-bucket',
          HTTPS_PROXY: 'http://alice:pa/ss-9431@proxy.example.test:3128',
        },
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('s3 via proxy');
    expect(server.stored.map((m) => [m.name, m.sha256])).toEqual([['statement.pdf', sha(largePdf('local'))]]);
  });

  it('refuses a malformed proxy variable that only the bucket would use before anything is read or sent', async () => {
    const s3 = await startS3(['kyc']);
    await s3.put('kyc', 'docs/statement.pdf', largePdf('a'));
    const server = closeAfter(await startSandbox());
    // Unit21's sandbox is loopback and goes direct; the store's host would go through HTTP_PROXY, whose password ends the host early.
    const result = await runBin(['upload', 's3://kyc/docs/', '--entity', 'cust-1', ...target(server)], {
      cwd: await tempDir(),
      env: {
        ...s3Env(`http://${STORE_HOST}:9`),
        U21_API_KEY: server.apiKey,
        NODE_OPTIONS: `--import=${await loopbackDns()}`,
        HTTP_PROXY: 'http://alice:pa/ss-9431@proxy.example.test:3128',
      },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('u21-media: error: HTTP_PROXY: "http://***@proxy.example.test:3128" is not a URL');
    expect(result.stdout + result.stderr).not.toContain('ss-9431');
    expect(server.requests).toHaveLength(0);
  });

  it('names a proxy that refuses its credentials (HTTP 407), without printing them', async () => {
    const s3 = await startS3(['kyc']);
    await s3.put('kyc', 'docs/statement.pdf', largePdf('a'));
    const port = new URL(s3.endpoint).port;
    const url = (await connectProxyTo(Number(port))).url();
    const server = closeAfter(await startSandbox());
    const wrong = url.replace(PROXY_PASSWORD, 'not-the-pw-9876');
    const result = await runBin(
      ['upload', 's3://kyc/docs/', '--entity', 'cust-1', ...target(server).filter((a) => a !== '--json')],
      {
        cwd: await tempDir(),
        env: {
          ...s3Env(`http://${STORE_HOST}:${port}`),
          U21_API_KEY: server.apiKey,
          NODE_OPTIONS: `--import=${await loopbackDns()}`,
          HTTP_PROXY: wrong,
        },
      },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the proxy refused the credentials (HTTP 407)');
    expect(result.stdout + result.stderr).not.toContain('not-the-pw-9876');
    expect(server.requests).toHaveLength(0);
  });
});
