import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readReport } from '../../src/core/inputs/report-format.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { BIN, cleanEnv, closeAfter, runBin, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, pdfs, startBin, timesStored } from './attack-helpers.js';

/** What a terminal would act on: escape sequences, BEL, line breaks, bidirectional overrides, U+2028, C1 controls. */
const ACTS_ON_A_TERMINAL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** Each line of a text, with its line end: none may act on a terminal, nor forge a line of ours. */
function expectInert(text: string, where: string) {
  for (const line of text.split('\n'))
    expect(ACTS_ON_A_TERMINAL.test(line), `${where}: ${JSON.stringify(line)}`).toBe(false);
}

const TITLE = '\u001b]0;pwned\u0007';
const CLEAR = '\u001b[2J\u001b[H';
const FORGED = '\n✔ 10 of 10 files uploaded';
const RLO = '\u202egpj.exe';

describe('what reaches a terminal or a report cannot act on it', () => {
  it('file names, manifest paths and config keys in exit-2 problem lines and config errors', async () => {
    const dir = await tempDir();
    const names = [`title${TITLE}.pdf`, `forged${FORGED}.pdf`, `rlo${RLO}.pdf`, `clear${CLEAR}.pdf`, `sep\u2028x.pdf`];
    for (const name of names) await writeFile(join(dir, name), ''); // empty: refused
    const named = await runBin(['upload', ...names, '--entity', 'c1', '--org', 'acme', '--env', 'prod1', '--dry-run'], {
      cwd: dir,
    });
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('title\\u001b]0;pwned\\u0007.pdf: file is empty');
    expect(named.stderr).toContain('forged\\n✔ 10 of 10 files uploaded.pdf');
    expect(named.stderr).toContain('rlo\\u202egpj.exe.pdf');
    expect(named.stderr).not.toMatch(/^✔/m);
    expectInert(named.stderr, 'problem lines');

    await writeFile(join(dir, 'manifest.csv'), `path,entity_id\n"gone${TITLE}${FORGED}.pdf",c1\n`);
    const manifest = await runBin(
      ['upload', '--manifest', 'manifest.csv', '--org', 'acme', '--env', 'prod1', '--dry-run'],
      { cwd: dir },
    );
    expect(manifest.code).toBe(2);
    expect(manifest.stderr).toContain('manifest.csv:2: gone\\u001b]0;pwned\\u0007\\n✔ 10 of 10 files uploaded.pdf: ');
    expectInert(manifest.stderr, 'manifest problem lines');

    await mkdir(join(dir, 'repo'));
    await writeFile(join(dir, 'repo', '.u21mediarc.json'), JSON.stringify({ [`org${TITLE}${FORGED}`]: 'x' }));
    const config = await runBin(['upload', '.', '--entity', 'c1', '--dry-run'], { cwd: join(dir, 'repo') });
    expect(config.code).toBe(2);
    expect(config.stderr).toContain('unknown key "org\\u001b]0;pwned\\u0007\\n✔ 10 of 10 files uploaded"');
    expectInert(config.stderr, 'config error');
  });

  it('names that pass the check (U+202E, U+2028) in the dry run, the events, the report and the journal', async () => {
    const dir = await tempDir();
    const names = [`passport_${RLO}.pdf`, 'line\u2028sep.pdf', `c1\u009b31m.pdf`];
    for (const [i, name] of names.entries()) await writeFile(join(dir, name), `%PDF-1.4 ${i}\n%%EOF\n`);
    const plan = await runBin(
      ['upload', '.', '--entity', 'c1', '--org', 'acme', '--env', 'prod1', '--dry-run', '--format', 'json'],
      { cwd: dir },
    );
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('passport_\\u202egpj.exe.pdf → c1');
    expectInert(plan.stdout, 'dry run');

    const server = closeAfter(await startSandbox());
    const out = await tempDir();
    const run = await runBin(
      [
        'upload',
        dir,
        '--entity',
        'c1',
        '--org',
        server.org,
        '--base-url',
        server.url,
        '--format',
        'json',
        '--json',
        '--report',
        join(out, 'r.csv'),
        '--journal',
        join(out, 'j.jsonl'),
      ],
      { cwd: out, env: { U21_API_KEY: server.apiKey } },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(server.stored.map((m) => m.name).sort()).toEqual([...names].sort());
    // Exact for a JSON reader, inert for a terminal.
    expect(
      run.events
        .filter((e) => e.event === 'uploaded')
        .map((e) => String(e.path).slice(dir.length + 1))
        .sort(),
    ).toEqual([...names].sort());
    expectInert(run.stdout, 'events');
    for (const file of ['r.csv', 'j.jsonl']) expectInert(await readFile(join(out, file), 'utf8'), file);
    expect((await readReport(join(out, 'r.csv'))).map((r) => r.name).sort()).toEqual([...names].sort());
  });

  it("a server's message in the failure line, the CSV report (which reads back exactly) and the JSON report", async () => {
    const message = `oops${TITLE}${CLEAR}${FORGED} ${RLO}\u2028`;
    const evil = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error_code: `bad${CLEAR}`, message })),
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    closeAfter({ close: () => new Promise<void>((resolve) => evil.close(() => resolve())) });
    const url = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    const dir = await pdfs(2);
    const out = await tempDir();
    for (const format of ['csv', 'json']) {
      const run = await runBin(
        [
          'upload',
          dir,
          '--entity',
          'c1',
          '--org',
          'acme',
          '--base-url',
          url,
          '--retries',
          '0',
          '--no-journal',
          '--report',
          join(out, `r.${format}`),
        ],
        { cwd: out, env: { U21_API_KEY: 'k-0123456789' } },
      );
      expect(run.code).toBe(1);
      // Said on one line, as every server message is: its line breaks (and U+2028) as spaces.
      expect(run.stderr).toContain(
        '400 bad\\u001b[2J\\u001b[H oops\\u001b]0;pwned\\u0007\\u001b[2J\\u001b[H ✔ 10 of 10 files uploaded \\u202egpj.exe',
      );
      expectInert(run.stderr, 'failure lines');
      expectInert(run.stdout, 'summary');
      expectInert(await readFile(join(out, `r.${format}`), 'utf8'), `${format} report`);
      const rows = await readReport(join(out, `r.${format}`));
      expect(rows.map((r) => r.reason)).toEqual([
        `bad${CLEAR}: ${message.replace(/\s+/g, ' ').trim()}`,
        `bad${CLEAR}: ${message.replace(/\s+/g, ' ').trim()}`,
      ]);
    }
  });
});

describe('secrets are masked by parsing, not by pattern', () => {
  it.each([
    ['a space', 'pa ss-77x'],
    ['an @', 'p@ss-77x'],
    ['colons and an @', 'p:a:ss@-77x'],
  ])('a proxy password holding %s is in no output, report or hint, with --json and -q too', async (_, password) => {
    const server = closeAfter(await startSandbox({ entities: ['nobody'] })); // every file fails: the retry hint is printed
    const dir = await pdfs(2);
    const out = await tempDir();
    const proxy = `http://alice:${password}@proxy.invalid:3128`;
    const texts: Record<string, string> = {};
    for (const flags of [['--json'], ['-q'], []]) {
      const run = await runBin(
        [
          'upload',
          dir,
          '--entity',
          'c1',
          '--org',
          server.org,
          '--base-url',
          server.url,
          '--proxy',
          proxy,
          '--retries',
          '0',
          '--no-journal',
          '--report',
          join(out, 'r.csv'),
          ...flags,
        ],
        { cwd: out, env: { U21_API_KEY: server.apiKey } },
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('the proxy is left out because it holds credentials');
      const how = flags.join(' ');
      Object.assign(texts, {
        [`stderr ${how}`]: run.stderr,
        [`stdout ${how}`]: run.stdout,
        [`report ${how}`]: await readFile(join(out, 'r.csv'), 'utf8'),
        [`meta ${how}`]: await readFile(join(out, 'r.csv.meta.json'), 'utf8'),
      });
    }
    expect(texts['meta ']).toContain("--proxy 'http://***@proxy.invalid:3128'");
    for (const [where, text] of Object.entries(texts)) {
      for (const form of [password, encodeURIComponent(password), password.slice(0, 4), password.slice(-5)])
        expect(text.includes(form), `${where} holds ${form}`).toBe(false);
    }
  });
});

describe('a proxy URL is parsed once, as the tool reads it', () => {
  it.each([
    [
      'a / in the password (the rest would read as a path, and be shown)',
      'http://user:2024/Secret@proxy.invalid:3128',
      'has more after the host',
    ],
    ['a % that starts no escape', 'http://user:50%off@proxy.invalid:3128', 'holds a % that starts no escape'],
  ])('is refused (exit 2, no stack trace, nothing of it shown) for %s', async (_, proxy, message) => {
    const server = closeAfter(await startSandbox());
    const dir = await pdfs(1);
    const run = await runBin(
      ['upload', dir, '--entity', 'c1', '--org', server.org, '--base-url', server.url, '--proxy', proxy, '--json'],
      { cwd: dir, env: { U21_API_KEY: server.apiKey } },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`--proxy: `);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toMatch(/Secret|50%off|This is a bug/);
    expect(server.requests).toHaveLength(0);
  });

  it('leaves paths holding an @ as they are in the retry hint and the report', async () => {
    const server = closeAfter(await startSandbox({ entities: ['nobody'] }));
    const dir = await pdfs(1);
    const out = await tempDir();
    await mkdir(join(out, 'jobs@2024'));
    const run = await runBin(
      [
        'upload',
        dir,
        '--entity',
        'c1',
        '--org',
        server.org,
        '--base-url',
        server.url,
        '--retries',
        '0',
        '--journal',
        'jobs@2024/journal.jsonl',
        '--report',
        'jobs@2024/report.csv',
      ],
      { cwd: out, env: { U21_API_KEY: server.apiKey } },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--retry-failed jobs@2024/report.csv ');
    expect(run.stderr).toContain('--journal jobs@2024/journal.jsonl ');
    expect(await readFile(join(out, 'jobs@2024', 'report.csv.meta.json'), 'utf8')).toContain(
      '--journal jobs@2024/journal.jsonl',
    );
  });
});

/** Spawns the built binary with its stdout or stderr on a device: /dev/full, which fails every write with ENOSPC. */
function runWithStdio(
  args: string[],
  options: { cwd: string; env: Record<string, string>; stdout?: string; stderr?: string },
) {
  const fds = [options.stdout, options.stderr].map((path) => (path === undefined ? 'pipe' : openSync(path, 'w')));
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ['ignore', fds[0]!, fds[1]!],
  });
  for (const fd of fds) if (typeof fd === 'number') closeSync(fd);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c) => (stdout += c));
  child.stderr?.on('data', (c) => (stderr += c));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
}

/** The uploads a journal records. */
const journalUploads = async (journal: string) =>
  (await readFile(journal, 'utf8')).split('\n').filter((line) => line.includes('"outcome":"uploaded"'));

/** Running the same command again ends clean, and every file is then stored exactly once. */
async function expectResumeStoresTheRestOnce(
  args: string[],
  options: { cwd: string; env: Record<string, string> },
  server: Sandbox,
  files: number,
) {
  const resumed = await runBin(args, options);
  expect(resumed.code, resumed.stderr).toBe(0);
  expect([...timesStored(server).values()]).toEqual(Array(files).fill(1));
}

describe('signals and broken outputs are stops, not crashes', () => {
  function args(dir: string, server: Sandbox, extra: string[]) {
    return ['upload', dir, '--entity', 'cust-7', ...toSandbox(server), '--concurrency', '4', ...extra];
  }

  it('SIGHUP (a closed terminal) drains like SIGTERM: exit 130, the report whole, the lock released, and the resume duplicates nothing unflagged', async () => {
    const dir = await pdfs(60);
    const out = await tempDir();
    const journal = join(out, 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const env = { U21_API_KEY: server.apiKey };
    const run = startBin(args(dir, server, ['--json', '--journal', journal, '--report', join(out, 'r.json')]), {
      cwd: out,
      env,
    });
    run.after('uploaded', 8, (child) => child.kill('SIGHUP'));
    const ended = await run.done;
    expect(ended.code).toBe(130);
    expect(ended.stderr).toContain('SIGHUP: finishing the uploads in flight');
    expectAccountedFor(run.events, 60);
    expect(run.events.at(-1)).toMatchObject({ stopped: 'interrupted' });
    const report = JSON.parse(await readFile(join(out, 'r.json'), 'utf8')) as unknown[];
    expect(report.at(-1)).toMatchObject({ run_end: { totals: { total: 60 } } });
    expect(existsSync(`${journal}.lock`)).toBe(false);
    expect(await journalUploads(journal)).toHaveLength(server.stored.length);
    await expectResumeStoresTheRestOnce(
      args(dir, server, ['--json', '--journal', journal]),
      { cwd: out, env },
      server,
      60,
    );
  }, 60_000);

  it('--json on a full device stops the run with one line, no stack trace, and a journal that knows every stored file', async () => {
    const dir = await pdfs(10);
    const out = await tempDir();
    const journal = join(out, 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 30 } }));
    const env = { U21_API_KEY: server.apiKey };
    const full = await runWithStdio(args(dir, server, ['--json', '--journal', journal]), {
      cwd: out,
      env,
      stdout: '/dev/full',
    });
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(
      /^u21-media: error: cannot write stdout \(ENOSPC: no space left on device.*\); the run stopped \(([\d,]+ files? not sent|every file had been sent)\)$/m,
    );
    expect(full.stderr).not.toMatch(/at .*\.js:\d+|This is a bug/);
    expect(await journalUploads(journal)).toHaveLength(server.stored.length);
    await expectResumeStoresTheRestOnce(
      args(dir, server, ['--json', '--journal', journal]),
      { cwd: out, env },
      server,
      10,
    );
  });

  it('stderr on a full device changes nothing: every file stored, the summary on stdout, exit 0', async () => {
    const dir = await pdfs(10);
    const server = closeAfter(await startSandbox());
    const run = await runWithStdio(args(dir, server, ['--json', '--no-journal']), {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
      stderr: '/dev/full',
    });
    expect(run.code).toBe(0);
    expect(server.stored).toHaveLength(10);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'summary', uploaded: 10 });
  });

  it.each(['--journal', '--report'])(
    'a named pipe given as %s is refused at once (exit 2), and nothing is sent',
    async (flag) => {
      const dir = await pdfs(3);
      const out = await tempDir();
      const fifo = join(out, flag === '--journal' ? 'journal.jsonl' : 'report.csv');
      execFileSync('mkfifo', [fifo]);
      const server = closeAfter(await startSandbox());
      const run = await runBin(args(dir, server, [flag, fifo]), { cwd: out, env: { U21_API_KEY: server.apiKey } });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`${flag}: ${fifo} is a named pipe with no reader, which would hold the run`);
      expect(server.requests).toHaveLength(0);
    },
  );
});
