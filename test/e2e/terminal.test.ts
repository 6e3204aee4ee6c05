import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { BIN, closeAfter, FIXTURES, runBin, tempDir } from '../helpers.js';

const ESC = '\x1b[';

async function slowSandbox(): Promise<Sandbox> {
  // Slow answers keep the run going long enough for progress to be drawn; one entity is missing.
  return closeAfter(await startSandbox({ entities: ['cust-1'], faults: { latencyMs: 150 } }));
}

const uploadArgs = (server: Sandbox) => ['upload', FIXTURES, '--entity', 'cust-1', '--org', server.org, '--base-url', server.url, '--concurrency', '2'];

describe('output on a terminal and off it (built binary)', () => {
  it('draws live progress in a pseudo-terminal and ends with the summary', async () => {
    const server = await slowSandbox();
    const log = join(await tempDir(), 'tty.log');
    const command = `stty cols 120 rows 40; ${process.execPath} ${BIN} ${uploadArgs(server).map((a) => `'${a}'`).join(' ')}`;
    await promisify(execFile)('script', ['-qfec', command, log], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, U21_API_KEY: server.apiKey, TERM: 'xterm-256color' },
      timeout: 30_000,
    });
    const screen = await readFile(log, 'utf8');
    expect(screen).toContain(ESC); // drawn, not logged
    expect(screen).toMatch(/\d+\/10 uploaded · .*in flight/);
    expect(screen).toMatch(/✔.*10 of 10 files uploaded/);
    expect(server.stored).toHaveLength(10);
  }, 40_000);

  it('through a pipe: no escape codes at all, failure lines, a hint and the summary', async () => {
    const server = await slowSandbox();
    const result = await runBin(['upload', FIXTURES, '--entity', 'ghost', '--org', server.org, '--base-url', server.url], {
      cwd: FIXTURES,
      env: { U21_API_KEY: server.apiKey, NO_COLOR: '' },
    });
    expect(result.code).toBe(1);
    const all = result.stdout + result.stderr;
    expect(all).not.toContain(ESC);
    // Ten failures alike: three are listed, the rest counted.
    expect(result.stderr.match(new RegExp(`^✖ ${FIXTURES}/\\S+ → ghost: 404 resource_not_found`, 'gm'))).toHaveLength(3);
    expect(result.stderr).toContain('… and 7 more failed with the same error (404 resource_not_found entity "ghost" not found)');
    expect(result.stderr.match(/hint: the entity may not exist yet/g)).toHaveLength(1);
    expect(result.stdout).toMatch(/^✖ 0 of 10 files uploaded, 10 failed/);
  });

  it('prints a CI progress line while a long run goes on', async () => {
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 700 } }));
    const result = await runBin([...uploadArgs(server), '--concurrency', '1'], { cwd: FIXTURES, env: { U21_API_KEY: server.apiKey } });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^\[\d+\/10\] \d+% \d+ files?\/s 0 failed/m);
    expect(result.stderr).not.toContain(ESC);
  }, 30_000);

  it('honours FORCE_COLOR off a terminal, and --no-color over it', async () => {
    const server = await slowSandbox();
    const forced = await runBin(['upload', 'selfie.jpg', '--entity', 'ghost', '--org', server.org, '--base-url', server.url], {
      cwd: FIXTURES,
      env: { U21_API_KEY: server.apiKey, FORCE_COLOR: '1', NO_COLOR: '' },
    });
    expect(forced.stderr).toContain(ESC);
    const plain = await runBin(['upload', 'selfie.jpg', '--entity', 'ghost', '--no-color', '--org', server.org, '--base-url', server.url], {
      cwd: FIXTURES,
      env: { U21_API_KEY: server.apiKey, FORCE_COLOR: '1', NO_COLOR: '' },
    });
    expect(plain.stderr + plain.stdout).not.toContain(ESC);
  });

  it('--quiet leaves only failures and the summary', async () => {
    const server = await slowSandbox();
    const dir = await tempDir();
    const { copyFile, writeFile } = await import('node:fs/promises');
    await copyFile(join(FIXTURES, 'proof_of_address.pdf'), join(dir, 'proof_of_address.pdf'));
    await copyFile(join(FIXTURES, 'proof_of_address.pdf.json'), join(dir, 'proof_of_address.pdf.json'));
    await writeFile(join(dir, 'memo.docx'), 'x');
    const result = await runBin(['upload', '.', '--entity', 'ghost', '--quiet', '--org', server.org, '--base-url', server.url], { cwd: dir, env: { U21_API_KEY: server.apiKey } });
    expect(result.stderr).not.toMatch(/skipped|⚠/);
    expect(result.stderr).toMatch(/✖ proof_of_address\.pdf → ghost: 404/);
    expect(result.stdout).toMatch(/0 of 2 files uploaded, 1 failed/);
  });
});

describe('a rerun with nothing left to send (built binary)', () => {
  it('says so plainly, with the reason, instead of "0 of N uploaded"', async () => {
    const server = closeAfter(await startSandbox());
    const journal = join(await tempDir(), 'j.jsonl');
    const args = ['upload', '.', '--entity', 'c', '--org', server.org, '--base-url', server.url, '--journal', journal];
    expect((await runBin(args, { cwd: FIXTURES, env: { U21_API_KEY: server.apiKey } })).code).toBe(0);
    const rerun = await runBin(args, { cwd: FIXTURES, env: { U21_API_KEY: server.apiKey } });
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toMatch(/^✔ nothing to send: all 10 files skipped\n {2}skipped +10: 10 already uploaded/);
    expect(rerun.stdout).not.toMatch(/files\/s/);
  });
});
