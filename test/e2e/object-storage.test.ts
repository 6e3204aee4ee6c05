import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/server.js';
import { BIN, cleanEnv, closeAfter, FIXTURES, of, runBin, tempDir } from '../helpers.js';
import { faultyS3, largePdf, s3Env, startS3, target, type TestS3 } from '../s3-server.js';

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** The fixtures under kyc/2024/<entity>/, sidecars included: what a bucket of an export looks like. */
async function seeded(): Promise<{ s3: TestS3; objects: Map<string, Buffer> }> {
  const s3 = await startS3(['kyc']);
  const objects = new Map<string, Buffer>();
  for (const name of await readdir(FIXTURES)) {
    const bytes = await readFile(join(FIXTURES, name));
    for (const entity of ['cust-1', 'cust-2']) {
      await s3.put('kyc', `2024/${entity}/${name}`, bytes);
      objects.set(`s3://kyc/2024/${entity}/${name}`, bytes);
    }
  }
  return { s3, objects };
}

describe('s3:// paths, read from a real S3 server on loopback (built binary)', () => {
  it('walks a prefix like a folder: each object streamed to its entity (--entity-from dir), its sidecar applied, the URL in every event', async () => {
    const { s3, objects } = await seeded();
    const server = closeAfter(await startSandbox());
    const cwd = await tempDir();
    const result = await runBin(['upload', 's3://kyc/2024/', '--entity-from', 'dir', ...target(server)], {
      cwd,
      env: { ...s3.env, U21_API_KEY: server.apiKey },
    });
    // Nothing but the run's own line: no SDK warning.
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^u21-media: sending to /)]);
    expect(result.code).toBe(0);
    const uploaded = of(result.events, 'uploaded');
    // Every fixture but the sidecars, for both entities.
    expect(uploaded).toHaveLength(2 * 10);
    for (const event of uploaded) {
      const bytes = objects.get(event.path as string)!;
      expect(event.sha256).toBe(sha(bytes));
      expect(event.entity_id).toBe((event.path as string).split('/')[4]);
    }
    expect(server.stored.map((m) => `${m.objectId}/${m.name}`).sort()).toEqual(
      [...objects.keys()]
        .filter((url) => !url.endsWith('.json'))
        .map((url) => url.slice('s3://kyc/2024/'.length))
        .sort(),
    );
    const passport = server.stored.find((m) => m.objectId === 'cust-1' && m.name === 'passport_front.jpg')!;
    expect(passport.customData).toMatchObject({ source: 'onfido', document_country: 'GB' });
    expect(of(result.events, 'skipped')).toEqual([]);
  });

  it('matches a glob over keys, and a dry run plans exactly those, sending nothing', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await startSandbox());
    const cwd = await tempDir();
    const glob = 's3://kyc/2024/**/*_front.jpg';
    const dry = await runBin(['upload', glob, '--entity', 'cust-9', ...target(server), '--dry-run'], {
      cwd,
      env: s3.env,
    });
    expect(dry.code).toBe(0);
    // The same content under two keys goes once to one entity, as for files.
    const planned = of(dry.events, 'planned')
      .map((e) => e.path)
      .sort();
    expect(planned).toEqual(['s3://kyc/2024/cust-1/id_card_front.jpg', 's3://kyc/2024/cust-1/passport_front.jpg']);
    expect(
      of(dry.events, 'skipped')
        .map((e) => [e.path, e.reason])
        .sort(),
    ).toEqual([
      ['s3://kyc/2024/cust-2/id_card_front.jpg', 'duplicate'],
      ['s3://kyc/2024/cust-2/passport_front.jpg', 'duplicate'],
    ]);
    expect(server.requests).toHaveLength(0);
    const real = await runBin(['upload', glob, '--entity', 'cust-9', ...target(server)], {
      cwd,
      env: { ...s3.env, U21_API_KEY: server.apiKey },
    });
    expect(real.code).toBe(0);
    expect(
      of(real.events, 'uploaded')
        .map((e) => e.path)
        .sort(),
    ).toEqual(['s3://kyc/2024/cust-1/id_card_front.jpg', 's3://kyc/2024/cust-1/passport_front.jpg']);
    expect(of(real.events, 'skipped').map((e) => e.reason)).toEqual(['duplicate', 'duplicate']);
  });

  it('reads the store --s3-endpoint names, with no AWS_ENDPOINT_URL_S3 set, and no region (as a store of its own often has none)', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await startSandbox());
    const { AWS_ENDPOINT_URL_S3: _, AWS_REGION: __, ...withoutEndpoint } = s3.env;
    const result = await runBin(
      ['upload', 's3://kyc/2024/cust-1/', '--s3-endpoint', s3.endpoint, '--entity', 'cust-1', ...target(server)],
      { cwd: await tempDir(), env: { ...withoutEndpoint, U21_API_KEY: server.apiKey } },
    );
    expect(result.code).toBe(0);
    expect(server.stored.map((m) => m.name).sort()).toEqual(
      (await readdir(FIXTURES)).filter((name) => !name.endsWith('.json')).sort(),
    );
  });

  it('skips on a rerun what the journal records as uploaded, by its s3:// URL', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await startSandbox());
    const cwd = await tempDir();
    const args = [
      'upload',
      's3://kyc/2024/cust-1/',
      '--entity',
      'cust-1',
      ...target(server).filter((a) => a !== '--no-journal'),
      '--journal',
      join(cwd, 'journal.jsonl'),
    ];
    const first = await runBin(args, { cwd, env: { ...s3.env, U21_API_KEY: server.apiKey } });
    expect(of(first.events, 'uploaded')).toHaveLength(10);
    const again = await runBin(args, { cwd, env: { ...s3.env, U21_API_KEY: server.apiKey } });
    expect(again.code).toBe(0);
    expect(of(again.events, 'skipped').map((e) => e.reason)).toEqual(Array(10).fill('journal'));
    expect(server.stored).toHaveLength(10);
    expect(await readFile(join(cwd, 'journal.jsonl'), 'utf8')).toContain('"s3://kyc/2024/cust-1/passport_front.jpg"');
  });

  it('fails an object replaced between its check and its send (file_changed), sending none of its bytes', async () => {
    const s3 = await startS3(['kyc']);
    await s3.put('kyc', 'docs/statement.pdf', largePdf('a'));
    await s3.put('kyc', 'docs/other.pdf', largePdf('b'));
    let replaced = false;
    // The send's read (the whole object, not the check's first 4096 bytes or its tail) finds it replaced.
    const proxy = await faultyS3(s3.endpoint, async (req) => {
      if (
        !replaced &&
        req.url!.includes('statement.pdf') &&
        req.headers.range === `bytes=0-${largePdf('a').length - 1}`
      ) {
        replaced = true;
        await s3.put('kyc', 'docs/statement.pdf', largePdf('c'));
      }
      return undefined;
    });
    const server = closeAfter(await startSandbox());
    const result = await runBin(['upload', 's3://kyc/docs', '--entity', 'cust-1', ...target(server)], {
      cwd: await tempDir(),
      env: { ...s3Env(proxy.endpoint), U21_API_KEY: server.apiKey },
    });
    expect(result.code).toBe(1);
    expect(of(result.events, 'failed')).toEqual([
      expect.objectContaining({
        path: 's3://kyc/docs/statement.pdf',
        error_code: 'file_changed',
        message: expect.stringContaining('replaced after the check'),
      }),
    ]);
    expect(server.stored.map((m) => m.name)).toEqual(['other.pdf']);
  });

  it('retries a 503 SlowDown storm and a connection cut mid-object, and uploads every object once', async () => {
    const s3 = await startS3(['kyc']);
    for (let i = 0; i < 4; i++) await s3.put('kyc', `docs/statement_${i}.pdf`, largePdf(String(i)));
    const tries = new Map<string, number>();
    const proxy = await faultyS3(s3.endpoint, (req) => {
      const request = `${req.method} ${req.url} ${req.headers.range ?? ''}`;
      const n = (tries.get(request) ?? 0) + 1;
      tries.set(request, n);
      if (n <= 2) return 'slowdown';
      // The send's read of one object is cut once, after some of its bytes.
      if (n === 3 && req.url!.includes('statement_2') && req.headers.range === `bytes=0-${largePdf('2').length - 1}`)
        return 'reset';
      return undefined;
    });
    const server = closeAfter(await startSandbox());
    const result = await runBin(['upload', 's3://kyc/docs/', '--entity', 'cust-1', ...target(server)], {
      cwd: await tempDir(),
      env: { ...s3Env(proxy.endpoint), U21_API_KEY: server.apiKey },
    });
    expect(result.stderr).not.toMatch(/warning/i);
    expect(result.code).toBe(0);
    expect(proxy.seen.slowdown).toBeGreaterThanOrEqual(2 * 9);
    expect(proxy.seen.reset).toBe(1);
    expect(server.stored.map((m) => [m.name, m.sha256]).sort()).toEqual(
      [0, 1, 2, 3].map((i) => [`statement_${i}.pdf`, sha(largePdf(String(i)))]),
    );
  });

  it('names refused credentials with the fix, exit 2, nothing sent, and never prints the secret', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await startSandbox());
    const secret = 'wJalrXUtnFEMI-K7MDENG-this-is-secret';
    const env = {
      ...s3Env(s3.endpoint, { id: 'AKIAWRONGKEY', secret }),
      AWS_SESSION_TOKEN: 'session-token-secret',
      U21_API_KEY: server.apiKey,
    };
    const result = await runBin(
      ['upload', 's3://kyc/2024/', '--entity', 'cust-1', ...target(server).filter((a) => a !== '--json')],
      { cwd: await tempDir(), env },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /s3:\/\/kyc\/2024\/.*refused the credentials \(InvalidAccessKeyId\); check AWS_PROFILE/,
    );
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect(result.stdout + result.stderr).not.toContain('session-token-secret');
    expect(server.requests).toHaveLength(0);
  });

  it('names missing credentials with the fix before any request, with no region or endpoint given either', async () => {
    const server = closeAfter(await startSandbox());
    // Nothing the SDK could find credentials in: no variables, no files (the suite's HOME), no instance metadata.
    const result = await runBin(['upload', 's3://kyc/2024/', '--entity', 'cust-1', ...target(server)], {
      cwd: await tempDir(),
      env: { AWS_EC2_METADATA_DISABLED: 'true', U21_API_KEY: server.apiKey },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      's3://kyc/2024/: no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    );
    expect(server.requests).toHaveLength(0);
  });

  it('names a missing bucket and a key that matches nothing, with the fix', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await startSandbox());
    const result = await runBin(
      [
        'upload',
        's3://no-such-bucket/x/',
        's3://kyc/2025/',
        '--entity',
        'cust-1',
        ...target(server).filter((a) => a !== '--json'),
      ],
      { cwd: await tempDir(), env: { ...s3.env, U21_API_KEY: server.apiKey } },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('s3://no-such-bucket/x/: the bucket does not exist');
    // Named once, by the problem's path: the message does not repeat it.
    expect(result.stderr).not.toContain('s3://no-such-bucket/x/: s3://no-such-bucket/x/');
    expect(result.stderr).toContain('s3://kyc/2025/: no object has this key, and none is below it as a folder');
    expect(result.stderr).not.toContain('s3://kyc/2025/: s3://kyc/2025/');
  });
});

/** The modules a run of the built binary imports, as a loader hook records every specifier it resolves. */
async function importsOf(args: string[], env: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  const log = join(dir, 'imports.log');
  await writeFile(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(specifier, context, next) { appendFileSync(${JSON.stringify(log)}, specifier + '\\n'); return next(specifier, context); }\n`,
  );
  await writeFile(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${join(dir, 'hooks.mjs')}`).href)});\n`,
  );
  await new Promise((resolve) =>
    spawn(process.execPath, ['--import', join(dir, 'register.mjs'), BIN, ...args], {
      cwd: dir,
      env: cleanEnv(env),
      stdio: 'ignore',
    }).on('close', resolve),
  );
  return readFile(log, 'utf8');
}

describe('the AWS SDK is loaded only for s3:// paths (built binary)', () => {
  it('is not imported by --version or a run of local files, and is by a run that names a bucket', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await startSandbox());
    const local = await importsOf(['upload', FIXTURES, '--entity', 'cust-1', ...target(server), '--dry-run'], {});
    // The hook saw the run: the CLI and its upload path.
    expect(local).toContain('./body/reader-threads.js');
    expect(local).not.toContain('@aws-sdk');
    expect(await importsOf(['--version'], {})).not.toContain('@aws-sdk');
    const remote = await importsOf(
      ['upload', 's3://kyc/2024/cust-1/', '--entity', 'cust-1', ...target(server), '--dry-run'],
      s3.env,
    );
    expect(remote).toContain('@aws-sdk/client-s3');
  });
});
