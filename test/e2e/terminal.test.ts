import { spawn } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { BIN, cleanEnv, closeAfter, fixtureCopy, FIXTURES, runBin, tempDir, toSandbox } from '../helpers.js';

const ESC = '\x1b[';

/**
 * Runs the built binary in a pseudo-terminal (script(1)) and returns all it drew. `onScreen`
 * sees the screen as it grows and may type into the terminal (Ctrl-C is '\x03').
 */
function inTerminal(
  args: string[],
  options: {
    cwd: string;
    env: Record<string, string>;
    onScreen?: (screen: string, type: (keys: string) => void) => void;
  },
) {
  const command = `stty cols 120 rows 40; ${process.execPath} ${BIN} ${args.map((a) => `'${a}'`).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: options.cwd,
    env: cleanEnv({ TERM: 'xterm-256color', ...options.env }),
  });
  let screen = '';
  child.stdout.on('data', (chunk) => {
    screen += chunk;
    options.onScreen?.(screen, (keys) => child.stdin.write(keys));
  });
  return new Promise<{ code: number | null; screen: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen }));
  });
}

async function slowSandbox(): Promise<Sandbox> {
  // Slow answers keep the run going long enough for progress to be drawn; one entity is missing.
  return closeAfter(await startSandbox({ entities: ['cust-1'], faults: { latencyMs: 150 } }));
}

const uploadArgs = (server: Sandbox) => [
  'upload',
  FIXTURES,
  '--entity',
  'cust-1',
  '--org',
  server.org,
  '--base-url',
  server.url,
  '--concurrency',
  '2',
];

describe('output on a terminal and off it (built binary)', () => {
  it('draws live progress in a pseudo-terminal and ends with the summary', async () => {
    const server = await slowSandbox();
    const { screen } = await inTerminal(uploadArgs(server), { cwd: FIXTURES, env: { U21_API_KEY: server.apiKey } });
    expect(screen).toContain(ESC); // drawn, not logged
    expect(screen).toMatch(/\d+\/10 uploaded · .*in flight/);
    expect(screen).toMatch(/✔.*10 of 10 files uploaded/);
    expect(server.stored).toHaveLength(10);
  }, 40_000);

  it('through a pipe: no escape codes at all, failure lines, a hint and the summary', async () => {
    const server = await slowSandbox();
    const result = await runBin(
      ['upload', FIXTURES, '--entity', 'ghost', '--org', server.org, '--base-url', server.url],
      {
        cwd: FIXTURES,
        env: { U21_API_KEY: server.apiKey, NO_COLOR: '' },
      },
    );
    expect(result.code).toBe(1);
    const all = result.stdout + result.stderr;
    expect(all).not.toContain(ESC);
    // Ten failures alike: three are listed, the rest counted.
    expect(result.stderr.match(new RegExp(`^✖ ${FIXTURES}/\\S+ → ghost: 404 resource_not_found`, 'gm'))).toHaveLength(
      3,
    );
    expect(result.stderr).toContain(
      '… and 7 more failed with the same error (404 resource_not_found entity "ghost" not found)',
    );
    expect(result.stderr.match(/hint: the entity may not exist yet/g)).toHaveLength(1);
    expect(result.stdout).toMatch(/^✖ 0 of 10 files uploaded, 10 failed/);
  });

  it('prints a CI progress line while a long run goes on', async () => {
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 700 } }));
    const result = await runBin([...uploadArgs(server), '--concurrency', '1'], {
      cwd: FIXTURES,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^\[\d+\/10\] \d+% \d+ files?\/s 0 failed/m);
    expect(result.stderr).not.toContain(ESC);
  }, 30_000);

  it('honours FORCE_COLOR off a terminal, and --no-color over it', async () => {
    const server = await slowSandbox();
    const forced = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'ghost', '--org', server.org, '--base-url', server.url],
      {
        cwd: FIXTURES,
        env: { U21_API_KEY: server.apiKey, FORCE_COLOR: '1', NO_COLOR: '' },
      },
    );
    expect(forced.stderr).toContain(ESC);
    const plain = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'ghost', '--no-color', '--org', server.org, '--base-url', server.url],
      {
        cwd: FIXTURES,
        env: { U21_API_KEY: server.apiKey, FORCE_COLOR: '1', NO_COLOR: '' },
      },
    );
    expect(plain.stderr + plain.stdout).not.toContain(ESC);
  });

  it('--quiet leaves only failures and the summary', async () => {
    const server = await slowSandbox();
    const dir = await tempDir();
    const { copyFile, writeFile } = await import('node:fs/promises');
    await copyFile(join(FIXTURES, 'proof_of_address.pdf'), join(dir, 'proof_of_address.pdf'));
    await copyFile(join(FIXTURES, 'proof_of_address.pdf.json'), join(dir, 'proof_of_address.pdf.json'));
    await writeFile(join(dir, 'memo.docx'), 'x');
    const result = await runBin(
      ['upload', '.', '--entity', 'ghost', '--quiet', '--org', server.org, '--base-url', server.url],
      { cwd: dir, env: { U21_API_KEY: server.apiKey } },
    );
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

/** `count` small valid PDFs, doc_0000.pdf on, in `dir`. */
async function writeDocs(dir: string, count: number, from = 0) {
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      writeFile(join(dir, `doc_${String(from + i).padStart(4, '0')}.pdf`), `%PDF-1.4 document ${from + i}\n%%EOF\n`),
    ),
  );
}

describe('progress that matches the run (built binary)', () => {
  it('on a resumed run counts the files uploaded before apart from those it sends', async () => {
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 150 } }));
    const dir = await tempDir();
    const journal = join(await tempDir(), 'journal.jsonl');
    const args = ['upload', '.', '--entity', 'c', ...toSandbox(server), '--journal', journal];
    await writeDocs(dir, 30);
    expect(
      (await runBin([...args, '--concurrency', '16'], { cwd: dir, env: { U21_API_KEY: server.apiKey } })).code,
    ).toBe(0);
    await writeDocs(dir, 30, 30);

    const { code, screen } = await inTerminal([...args, '--concurrency', '2'], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(code).toBe(0);
    // Until the journal's files are told apart, all 60 are to be sent; then 30 are, and 30 were before.
    const lines = screen.match(new RegExp(`\\d+/\\d+ uploaded[^${ESC[0]}]*`, 'g'))!;
    expect(lines.at(-1)).toMatch(/^\d+\/30 uploaded · 30 already uploaded · \d+ in flight/);
    expect(screen).toMatch(/✔ 30 of 60 files uploaded .*\r\n {2}skipped +30: 30 already uploaded/);
    expect(server.stored).toHaveLength(60);
  }, 40_000);

  it('shows the check as it goes; Ctrl-C during it says how far it got and that nothing was sent', async () => {
    const server = closeAfter(await startSandbox());
    const dir = await tempDir();
    await writeDocs(dir, 5000);
    let typed = false;
    const { code, screen } = await inTerminal(
      ['upload', '.', '--entity', 'c', '--org', server.org, '--base-url', server.url],
      {
        cwd: dir,
        env: { U21_API_KEY: server.apiKey },
        onScreen: (shown, type) => {
          if (typed || !shown.includes('checking')) return;
          typed = true;
          type('\x03');
        },
      },
    );
    expect(code).toBe(130);
    expect(screen).toMatch(/checking [\d,]+(\/5,000)? files?/);
    expect(screen).toContain('SIGINT: stopping the check; nothing is sent');
    expect(screen).toMatch(
      /✖ interrupted during the check, after checking [\d,]+( of 5,000)? files?: nothing was sent/,
    );
    expect(screen).toContain('u21-media: interrupted during the check, before any file was sent');
    expect(screen).not.toMatch(/0 of 0 files/);
    expect(server.requests).toHaveLength(0);
  }, 40_000);

  it('-q with --dry-run prints the plan summary and the problems, not a line per file', async () => {
    const dir = await fixtureCopy();
    await writeFile(join(dir, 'blank.png'), '');
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie_2.jpg'));
    const result = await runBin(
      ['upload', '.', '--entity', 'c', '--dry-run', '-q', '--skip-invalid', '--org', 'acme', '--env', 'prod1'],
      { cwd: dir },
    );
    expect(result.code).toBe(1);
    // The copy is skipped as the real run would skip it: a duplicate.
    expect(result.stdout).toBe(
      'Dry run: 10 files (6.0 kB) would be uploaded, 2 skipped (1 invalid); nothing sent\n  skipped             2: 1 invalid, 1 duplicate\n',
    );
    expect(result.stderr).toBe('- skipped blank.png (invalid: file is empty (0 bytes); Unit21 rejects empty media)\n');
  });
});
