import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { cleanEnv, FIXTURES, ROOT, runBin, startSandboxCommand, tempDir } from '../helpers.js';

describe('u21-media sandbox (built binary)', () => {
  it('takes uploads, keeps the files on disk, lists them back, logs each request and stops cleanly', async () => {
    const dir = await tempDir();
    const sandbox = await startSandboxCommand(['--dir', dir, '--org', 'acme', '--api-key', 'local-key']);
    // A key given may be a real one: never printed.
    expect(sandbox.banner).not.toMatch(/local-key/);
    expect(sandbox.banner).toMatch(/^ {2}api key {3}as given with --api-key \(not shown\)$/m);
    const upload = await runBin(['upload', '.', '--entity', 'cust/7', '--org', 'acme', '--base-url', sandbox.url], {
      cwd: FIXTURES,
      env: { U21_API_KEY: 'local-key' },
    });
    expect(upload.code).toBe(0);

    const response = await fetch(`${sandbox.url}/v1/acme/entities/cust%2F7`, { headers: { 'u21-key': 'local-key' } });
    const body = (await response.json()) as { media_data: Array<{ name: string; media_type: string | null }> };
    expect(body.media_data.map((m) => m.name).sort()).toEqual(
      (await readdir(FIXTURES)).filter((n) => !n.endsWith('.json')).sort(),
    );
    expect((await fetch(`${sandbox.url}/v1/acme/entities/cust%2F7`)).status).toBe(401);

    const folder = join(dir, 'acme', encodeURIComponent('cust/7'));
    expect(await readFile(join(folder, 'selfie.jpg'))).toEqual(await readFile(join(FIXTURES, 'selfie.jpg')));
    expect(JSON.parse(await readFile(join(folder, 'passport_front.jpg.meta.json'), 'utf8'))).toMatchObject({
      media_type: 'IMAGE_PASSPORT_FRONT',
      entity_id: 'cust/7',
    });

    const { code, stderr } = await sandbox.stop();
    expect(code).toBe(0);
    expect(stderr).toMatch(/Stopped; 10 media stored/);
    expect(sandbox.log.filter((l) => l.startsWith('PUT /v1/acme/entities/cust%2F7/link-media 200'))).toHaveLength(10);
  });

  it('injects seeded faults the uploader rides out', async () => {
    const sandbox = await startSandboxCommand(['--fail-rate', '0.3', '--lock-rate', '0.1', '--seed', '4']);
    const upload = await runBin(
      ['upload', '.', '--entity', 'c', '--org', 'sandbox', '--base-url', sandbox.url, '--json', '--retries', '10'],
      { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } },
    );
    expect(upload.code).toBe(0);
    expect(upload.events.at(-1)).toMatchObject({ uploaded: 10, failed: 0 });
    expect(upload.events.filter((e) => e.event === 'retry').length).toBeGreaterThan(0);
    await sandbox.stop();
    expect(sandbox.log.some((l) => / \[(500|503|423|reset-before)\] /.test(l))).toBe(true);
  }, 30_000);

  it('refuses bad option values', async () => {
    const result = await runBin(['sandbox', '--fail-rate', '2'], { cwd: ROOT });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--fail-rate: "2" is not a valid value/);
    const revoke = await runBin(['sandbox', '--revoke-key-after', '-1'], { cwd: ROOT });
    expect(revoke.code).toBe(2);
    expect(revoke.stderr).toMatch(/--revoke-key-after: "-1" is not a valid value/);
  });

  it('shows its default key and org in --help', async () => {
    const { code, stdout } = await runBin(['sandbox', '--help'], { cwd: ROOT });
    expect(code).toBe(0);
    expect(stdout).toMatch(/--api-key <key> [^-]*\(default: "sandbox-key"\)/);
    expect(stdout).toMatch(/--org <name> [^-]*\(default:\s+"sandbox"\)/);
  });

  it('writes its samples with --samples and suggests the exact command that uploads them, with its key and org', async () => {
    const dir = await tempDir();
    const sandbox = await startSandboxCommand(['--samples', 'samples', '--dir', 'stored'], { cwd: dir });
    const samples = join(dir, 'samples');
    expect(sandbox.banner).toMatch(/^ {2}api key {3}sandbox-key$/m);
    const suggested = sandbox.banner.split('\n').find((line) => line.includes(' u21-media upload '))!;
    expect(suggested).toBe(
      `  U21_API_KEY=sandbox-key u21-media upload ${samples} --org sandbox --base-url ${sandbox.url} --entity demo-1`,
    );

    const upload = await runBin(suggested.split(' u21-media ')[1]!.split(' '), {
      cwd: ROOT,
      env: { U21_API_KEY: 'sandbox-key' },
    });
    expect(upload.code).toBe(0);
    const stored = join(dir, 'stored', 'sandbox', 'demo-1');
    for (const name of (await readdir(FIXTURES)).filter((n) => !n.endsWith('.json'))) {
      expect(await readFile(join(stored, name))).toEqual(await readFile(join(FIXTURES, name)));
    }
    expect(JSON.parse(await readFile(join(stored, 'proof_of_address.pdf.meta.json'), 'utf8'))).toMatchObject({
      custom_data: { document: 'utility_bill', reviewed_by: 'kyc-team' },
    });
  });

  it('without --samples suggests no folder it does not have, and how to get sample files', async () => {
    const sandbox = await startSandboxCommand([]);
    expect(sandbox.banner).not.toMatch(/fixtures/);
    expect(sandbox.banner).toMatch(/u21-media upload <files or folders> --org sandbox/);
    expect(sandbox.banner).toMatch(/--samples <folder>/);
  });

  it('refuses --samples over a file of its own (exit 2, one line naming it), writing nothing and not starting', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'selfie.jpg'), 'mine');
    const result = await runBin(['sandbox', '--samples', dir], { cwd: ROOT });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `u21-media: error: --samples: ${join(dir, 'selfie.jpg')} already exists and is not the sample of that name\n  hint: give a new or empty folder\n`,
    );
    expect(await readdir(dir)).toEqual(['selfie.jpg']);
  });

  it('answers 404 resource_not_found for an entity given with --missing, as Unit21 does: its files fail, the run goes on (exit 1)', async () => {
    const sandbox = await startSandboxCommand(['--missing', 'cust-9', '--missing', 'evt-9']);
    const env = { U21_API_KEY: 'sandbox-key' };
    const missing = await runBin(
      [
        'upload',
        'selfie.jpg',
        'id_card_front.jpg',
        '--entity',
        'cust-9',
        '--org',
        'sandbox',
        '--base-url',
        sandbox.url,
        '--json',
      ],
      { cwd: FIXTURES, env },
    );
    expect(missing.code).toBe(1);
    const failed = missing.events.filter((e) => e.event === 'failed');
    expect(failed).toHaveLength(2);
    expect(failed[0]).toMatchObject({ status: 404, error_code: 'resource_not_found' });
    const event = await runBin(
      [
        'upload',
        'selfie.jpg',
        '--event',
        'evt-9',
        '--media-type',
        'IMAGE_CHECK_FRONT',
        '--org',
        'sandbox',
        '--base-url',
        sandbox.url,
      ],
      { cwd: FIXTURES, env },
    );
    expect(event.code).toBe(1);
    expect(event.stderr).toMatch(/selfie\.jpg → event evt-9: 404 resource_not_found event "evt-9" not found/);
    const other = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'cust-1', '--org', 'sandbox', '--base-url', sandbox.url],
      { cwd: FIXTURES, env },
    );
    expect(other.code).toBe(0);
    expect(sandbox.banner).toMatch(/^ {2}missing {3}cust-9, evt-9 \(answered 404 resource_not_found\)$/m);
    const { stderr } = await sandbox.stop();
    expect(stderr).toMatch(/Stopped; 1 media stored/);
  });

  it('refuses the key after --revoke-key-after requests: the run stops at once (exit 3), nothing more is sent', async () => {
    const dir = await tempDir();
    const sandbox = await startSandboxCommand(['--revoke-key-after', '3', '--dir', dir]);
    expect(sandbox.banner).toMatch(/^ {2}revoked {3}the key, after 3 requests \(answered 401\)$/m);
    const upload = await runBin(
      ['upload', '.', '--entity', 'c', '--org', 'sandbox', '--base-url', sandbox.url, '--concurrency', '1', '--json'],
      { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } },
    );
    expect(upload.code).toBe(3);
    expect(upload.events.filter((e) => e.event === 'uploaded')).toHaveLength(3);
    expect(upload.events.at(-1)).toMatchObject({ uploaded: 3 });
    await sandbox.stop();
    expect(sandbox.log.map((line) => line.split(' ')[2])).toEqual(['200', '200', '200', '401']);
    expect((await readdir(join(dir, 'sandbox', 'c'))).filter((n) => !n.endsWith('.meta.json'))).toHaveLength(3);
  });

  it('refuses a --latency no timer can hold (past 2^31-1 ms it would answer at once)', async () => {
    const result = await runBin(['sandbox', '--latency', '3000000000'], { cwd: ROOT });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /--latency: "3000000000" is not a valid value \(over the maximum, 3600000\)\n {2}hint: use a number from 0 to 3600000/,
    );
  });
});

describe('upload --event (built binary)', () => {
  it('sends to the event endpoint and refuses files without a media_type before sending', async () => {
    const sandbox = await startSandboxCommand([]);
    const refused = await runBin(
      ['upload', 'analyst_note.txt', '--event', 'evt-1', '--org', 'sandbox', '--base-url', sandbox.url],
      { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } },
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/analyst_note\.txt: event media needs a media_type/);
    const sent = await runBin(
      ['upload', 'selfie.jpg', '--event', 'evt-1', '--org', 'sandbox', '--base-url', sandbox.url],
      { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } },
    );
    expect(sent.code).toBe(0);
    await sandbox.stop();
    expect(sandbox.log.filter((l) => l.startsWith('PUT /v1/sandbox/events/evt-1/link-media 200'))).toHaveLength(1);
  });
});

describe('npm run demo', () => {
  it('lists every fixture the sandbox stored', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'demo.js')], {
      cwd: ROOT,
      env: cleanEnv(),
    });
    const output = stdout + stderr;
    for (const name of (await readdir(FIXTURES)).filter((n) => !n.endsWith('.json')))
      expect(output).toMatch(new RegExp(`^  ${name.replace('.', '\\.')} `, 'm'));
    expect(output).toMatch(/The sandbox stored 10 media/);
  });
});
