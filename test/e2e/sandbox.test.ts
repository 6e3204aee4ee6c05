import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { BIN, cleanEnv, FIXTURES, ROOT, runBin, tempDir } from '../helpers.js';

/** Starts `u21-media sandbox` and resolves with its base URL once it listens. */
async function startSandboxCommand(args: string[]) {
  const child = spawn(process.execPath, [BIN, 'sandbox', '--port', '0', ...args], { env: cleanEnv() });
  let stderr = '';
  const log: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => log.push(line));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const match = /at (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child.on('close', () => reject(new Error(stderr)));
  });
  const stop = () => {
    child.kill('SIGINT');
    return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  };
  return { url, log, stop, stderr: () => stderr };
}

describe('u21-media sandbox (built binary)', () => {
  it('takes uploads, keeps the files on disk, lists them back, logs each request and stops cleanly', async () => {
    const dir = await tempDir();
    const sandbox = await startSandboxCommand(['--dir', dir, '--org', 'acme', '--api-key', 'local-key']);
    const upload = await runBin(['upload', '.', '--entity', 'cust/7', '--org', 'acme', '--base-url', sandbox.url], { cwd: FIXTURES, env: { U21_API_KEY: 'local-key' } });
    expect(upload.code).toBe(0);

    const response = await fetch(`${sandbox.url}/v1/acme/entities/cust%2F7`, { headers: { 'u21-key': 'local-key' } });
    const body = (await response.json()) as { media_data: Array<{ name: string; media_type: string | null }> };
    expect(body.media_data.map((m) => m.name).sort()).toEqual((await readdir(FIXTURES)).filter((n) => !n.endsWith('.json')).sort());
    expect((await fetch(`${sandbox.url}/v1/acme/entities/cust%2F7`)).status).toBe(401);

    const folder = join(dir, 'acme', encodeURIComponent('cust/7'));
    expect(await readFile(join(folder, 'selfie.jpg'))).toEqual(await readFile(join(FIXTURES, 'selfie.jpg')));
    expect(JSON.parse(await readFile(join(folder, 'passport_front.jpg.meta.json'), 'utf8'))).toMatchObject({ media_type: 'IMAGE_PASSPORT_FRONT', entity_id: 'cust/7' });

    const { code, stderr } = await sandbox.stop();
    expect(code).toBe(0);
    expect(stderr).toMatch(/Stopped; 10 media stored/);
    expect(sandbox.log.filter((l) => l.startsWith('PUT /v1/acme/entities/cust%2F7/link-media 200'))).toHaveLength(10);
  });

  it('injects seeded faults the uploader rides out', async () => {
    const sandbox = await startSandboxCommand(['--fail-rate', '0.3', '--lock-rate', '0.1', '--seed', '4']);
    const upload = await runBin(['upload', '.', '--entity', 'c', '--org', 'sandbox', '--base-url', sandbox.url, '--json', '--retries', '10'], { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } });
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
  });

  it('refuses a --latency no timer can hold (past 2^31-1 ms it would answer at once)', async () => {
    const result = await runBin(['sandbox', '--latency', '3000000000'], { cwd: ROOT });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--latency: "3000000000" is not a valid value \(over the maximum, 3600000\)\n {2}hint: use a number from 0 to 3600000/);
  });
});

describe('upload --event (built binary)', () => {
  it('sends to the event endpoint and refuses files without a media_type before sending', async () => {
    const sandbox = await startSandboxCommand([]);
    const refused = await runBin(['upload', 'analyst_note.txt', '--event', 'evt-1', '--org', 'sandbox', '--base-url', sandbox.url], { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/analyst_note\.txt: event media needs a media_type/);
    const sent = await runBin(['upload', 'selfie.jpg', '--event', 'evt-1', '--org', 'sandbox', '--base-url', sandbox.url], { cwd: FIXTURES, env: { U21_API_KEY: 'sandbox-key' } });
    expect(sent.code).toBe(0);
    await sandbox.stop();
    expect(sandbox.log.filter((l) => l.startsWith('PUT /v1/sandbox/events/evt-1/link-media 200'))).toHaveLength(1);
  });
});

describe('npm run demo', () => {
  it("lists every fixture the sandbox stored", async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'demo.js')], { cwd: ROOT, env: cleanEnv() });
    const output = stdout + stderr;
    for (const name of (await readdir(FIXTURES)).filter((n) => !n.endsWith('.json'))) expect(output).toMatch(new RegExp(`^  ${name.replace('.', '\\.')} `, 'm'));
    expect(output).toMatch(/The sandbox stored 10 media/);
  });
});
