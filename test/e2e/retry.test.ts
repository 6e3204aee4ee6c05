import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readReport } from '../../src/core/inputs/report-format.js';
import { readVersion } from '../../src/core/shared/version.js';
import { startSandbox } from '../../src/sandbox/server.js';
import { BIN, cleanEnv, closeAfter, runBin, tempDir, type CliResult } from '../helpers.js';

const KEY = 'sk-live-retry-9c2e41d7';
const PROXY_PASSWORD = 'proxy-pass-77x';
// A loopback API is never reached through a proxy: the flag is here to be kept out of what the run writes.
const PROXY = `http://bob:${PROXY_PASSWORD}@proxy.invalid:3128`;
const FILES = 12;

/** Twelve small PDFs in kyc/ under a fresh working folder. */
async function workFolder(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'kyc'));
  await Promise.all(
    Array.from({ length: FILES }, (_, i) =>
      writeFile(
        join(dir, 'kyc', `doc_${String(i).padStart(2, '0')}.pdf`),
        `%PDF-1.4 statement ${i} ${'x'.repeat(i * 10)}\n%%EOF\n`,
      ),
    ),
  );
  return dir;
}

/** A folder on PATH whose `u21-media` is the built binary, so a printed command runs as printed. */
async function pathWithBin(): Promise<string> {
  const bin = join(await tempDir(), 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'u21-media'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
  await chmod(join(bin, 'u21-media'), 0o755);
  return `${bin}:${process.env.PATH}`;
}

/** Runs a command line in a POSIX shell, as a user pasting it would. */
function runInShell(command: string, cwd: string, env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env: cleanEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, events: [] }));
  });
}

/** Runs another program and gives its stdout as JSON; anything it says on stderr (a row it could not take) is a failure. */
function jsonFrom(program: string, args: string[]): Array<Record<string, string>> {
  const result = spawnSync(program, args, { encoding: 'utf8' });
  if (result.status !== 0 || result.stderr !== '')
    throw new Error(`${program} exited ${result.status}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Array<Record<string, string>>;
}

/** A CSV file's records as Python's csv.DictReader gives them. */
const readWithPython = (path: string) =>
  jsonFrom('python3', [
    '-c',
    'import csv, json, sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))))',
    path,
  ]);

/** A CSV file's records as sqlite3's `.import --csv` stores them in a new table (its first line names the columns). */
const readWithSqlite = (path: string) =>
  jsonFrom('sqlite3', [
    ':memory:',
    `.import --csv '${path.replace(/'/g, "''")}' report`,
    '.mode json',
    'SELECT * FROM report',
  ]);

/** The start of every run here: the kyc folder to cust-7 of acme on `server`. */
const uploadKyc = (server: { url: string }) => [
  'upload',
  'kyc',
  '--entity',
  'cust-7',
  '--org',
  'acme',
  '--base-url',
  server.url,
];
const faulty = (port = 0) => startSandbox({ apiKey: KEY, org: 'acme', port, faults: { seed: 5, error500: 0.4 } });

describe('retrying the failures of a run from its report (built binary)', () => {
  it.each(['csv', 'json'] as const)(
    'the printed command (%s report) sends exactly the failed files once the faults are off, and nothing else',
    async (format) => {
      const dir = await workFolder();
      const first = await faulty();
      const port = Number(new URL(first.url).port);
      const report = `report.${format}`;
      const args = [
        ...uploadKyc(first),
        '--retries',
        '0',
        '--concurrency',
        '2',
        '--journal',
        'journal.jsonl',
        '--report',
        report,
        '--proxy',
        PROXY,
        '--quiet',
      ];
      const run = await runBin(args, { cwd: dir, env: { U21_API_KEY: KEY } });
      await first.close();

      expect(run.code).toBe(1);
      const rows = await readReport(join(dir, report));
      const failed = rows
        .filter((r) => r.outcome === 'failed')
        .map((r) => r.name!)
        .sort();
      const uploaded = rows
        .filter((r) => r.outcome === 'uploaded')
        .map((r) => r.name!)
        .sort();
      expect(failed.length).toBeGreaterThan(0);
      expect(uploaded.length).toBeGreaterThan(0);
      expect([...failed, ...uploaded].sort()).toHaveLength(FILES);
      expect(first.stored.map((m) => m.name).sort()).toEqual(uploaded);

      // Said with --quiet too: it is the way back.
      const lines = run.stderr.split('\n');
      const at = lines.findIndex((line) => line.startsWith('u21-media: to retry the'));
      expect(lines[at]).toBe(
        `u21-media: to retry the ${failed.length} file${failed.length === 1 ? '' : 's'} (${failed.length} failed), run from this folder:`,
      );
      const command = lines[at + 1]!.trim();
      // The run's options without its files, entity, report and the proxy that holds a password.
      expect(command).toBe(
        `u21-media upload --retry-failed ${report} --org acme --base-url ${first.url} --retries 0 --concurrency 2 --journal journal.jsonl --quiet --report report.retry.${format}`,
      );
      expect(run.stderr).toMatch(/the proxy is left out because it holds credentials: set HTTPS_PROXY/);
      for (const output of [run.stdout, run.stderr]) {
        expect(output).not.toContain(KEY);
        expect(output).not.toContain(PROXY_PASSWORD);
      }

      // The same port, the faults off: the command runs as printed, with the key from the environment.
      const second = closeAfter(await startSandbox({ apiKey: KEY, org: 'acme', port }));
      const retry = await runInShell(command, dir, { U21_API_KEY: KEY, PATH: await pathWithBin() });
      expect(retry.code).toBe(0);
      expect(second.stored.map((m) => m.name).sort()).toEqual(failed);
      // One request a failed file: none of those already uploaded was sent again.
      expect(second.requests.map((r) => r.status)).toEqual(failed.map(() => 200));
      for (const m of second.stored) {
        expect(m.objectId).toBe('cust-7');
        expect(m.bytes).toBe((await stat(join(dir, 'kyc', m.name))).size);
        expect(m.sha256).toBe(rows.find((r) => r.name === m.name)!.sha256);
      }
      const retried = await readReport(join(dir, `report.retry.${format}`));
      expect(retried.map((r) => [r.name, r.outcome]).sort()).toEqual(failed.map((name) => [name, 'uploaded']));
      expect(retry.stderr).not.toContain('to retry');
    },
  );

  it('writes report columns and a header a reviewer can check, without the key or the proxy password', async () => {
    const dir = await workFolder();
    const server = closeAfter(await faulty());
    const args = [...uploadKyc(server), '--retries', '0', '--report', 'report.csv', '--proxy', PROXY];
    const run = await runBin([...args, '--json'], { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(run.code).toBe(1);
    const summary = run.events.at(-1)!;

    const text = await readFile(join(dir, 'report.csv'), 'utf8');
    // The column names first, as any CSV reader expects; the run's header is in the meta file.
    const [columns] = text.split('\n');
    expect(columns).toBe(
      'time,org,host,entity_id,path,abs_path,name,media_type,media_type_source,custom_data,bytes,sha256,outcome,reason,status,error_code,attempts,possibly_duplicated,object',
    );
    const meta = JSON.parse(await readFile(join(dir, 'report.csv.meta.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toEqual({
      tool: 'u21-media',
      tool_version: readVersion(),
      run_id: summary.run_id,
      host: `${server.url}/v1`,
      org: 'acme',
      proxy: null,
      config: null,
      command: `u21-media upload kyc --entity cust-7 --org acme --base-url ${server.url} --retries 0 --report report.csv --proxy 'http://***@proxy.invalid:3128' --json`,
      started: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      ended: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      totals: expect.objectContaining({ total: FILES, uploaded: summary.uploaded, failed: summary.failed, skipped: 0 }),
    });

    const rows = await readReport(join(dir, 'report.csv'));
    expect(rows).toHaveLength(FILES);
    for (const row of rows) {
      const name = row.path.replace('kyc/', '');
      const bytes = (await stat(join(dir, 'kyc', name))).size;
      const common = {
        org: 'acme',
        host: `${server.url}/v1`,
        entity_id: 'cust-7',
        abs_path: join(dir, 'kyc', name),
        name,
        media_type: null,
        media_type_source: 'none',
        bytes,
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        attempts: 1,
        possibly_duplicated: false,
      };
      if (row.outcome === 'uploaded')
        expect(row).toMatchObject({ ...common, status: 200, error_code: null, reason: null });
      else
        expect(row).toMatchObject({
          ...common,
          outcome: 'failed',
          status: 500,
          error_code: 'internal_error',
          reason: expect.stringMatching(/^internal_error/),
        });
    }
    // The failed event carries the hash too, for --json consumers.
    expect(run.events.find((e) => e.event === 'failed')).toMatchObject({
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    for (const written of [text, JSON.stringify(meta), run.stdout, run.stderr]) {
      expect(written).not.toContain(KEY);
      expect(written).not.toContain(PROXY_PASSWORD);
    }
  });

  describe.each([
    ['python3', ['--version']],
    ['sqlite3', ['-version']],
  ])("a CSV report read by %s, not the project's own reader", (program, probe) => {
    it.skipIf(spawnSync(program, probe).error !== undefined)(
      'takes the first line for the column names and each file for one record, formulas guarded',
      async () => {
        const dir = await workFolder();
        // Names a spreadsheet would run as a formula, and one that starts with the guard's own quote.
        const tricky = ['=1+1.pdf', "'quoted, with a comma.pdf"];
        for (const name of tricky) await writeFile(join(dir, 'kyc', name), `%PDF-1.4 ${name}\n%%EOF\n`);
        const server = closeAfter(await startSandbox({ apiKey: KEY, org: 'acme' }));
        const run = await runBin([...uploadKyc(server), '--report', 'report.csv', '--quiet'], {
          cwd: dir,
          env: { U21_API_KEY: KEY },
        });
        expect(run.code, run.stderr).toBe(0);

        const rows =
          program === 'python3' ? readWithPython(join(dir, 'report.csv')) : readWithSqlite(join(dir, 'report.csv'));
        expect(rows).toHaveLength(FILES + tricky.length);
        expect(Object.keys(rows[0]!)).toEqual([
          'time',
          'org',
          'host',
          'entity_id',
          'path',
          'abs_path',
          'name',
          'media_type',
          'media_type_source',
          'custom_data',
          'bytes',
          'sha256',
          'outcome',
          'reason',
          'status',
          'error_code',
          'attempts',
          'possibly_duplicated',
          'object',
        ]);
        expect(rows.map((row) => [row.outcome, row.entity_id])).toEqual(rows.map(() => ['uploaded', 'cust-7']));
        // The guard's quote is text to another reader: the cell shows it, and never starts a formula.
        expect(
          rows
            .map((row) => row.name)
            .filter((name) => !name!.startsWith('doc_'))
            .sort(),
        ).toEqual(["''quoted, with a comma.pdf", "'=1+1.pdf"]);
        expect(
          server.stored
            .map((m) => m.name)
            .filter((name) => !name.startsWith('doc_'))
            .sort(),
        ).toEqual([...tricky].sort());
      },
    );
  });

  it('without --report, says once how to get a report to retry from', async () => {
    const dir = await workFolder();
    const server = closeAfter(await faulty());
    const run = await runBin([...uploadKyc(server), '--retries', '0', '-q'], { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(run.code).toBe(1);
    expect(run.stderr.match(/add --report <file> to get a report to retry from/g)).toHaveLength(1);
    expect(run.stderr).not.toContain('--retry-failed report');
  });
});

describe('files sent without an answer (built binary)', () => {
  it('names the failed ones as maybe stored, then the ones sent again as maybe stored twice, and the printed command lists them all', async () => {
    const dir = await workFolder();
    // Each request stored, and most of them answered by a reset: sent, no answer.
    const server = await startSandbox({ apiKey: KEY, org: 'acme', faults: { seed: 3, resetAfterStore: 0.7 } });
    const args = [...uploadKyc(server), '--retries', '0', '--concurrency', '1', '--journal', 'journal.jsonl'];
    const first = await runBin(args, { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(first.code).toBe(1);
    // Every request was stored, answered or not.
    expect(server.stored).toHaveLength(FILES);
    const summary = Object.fromEntries(
      first.stdout.split('\n').map((line) => [line.slice(0, 22).trim(), line.slice(22)]),
    );
    const listing = summary['list them all']!;
    expect(listing).toMatch(
      new RegExp(`^u21-media journal show ${join(dir, 'journal.jsonl')} --run \\S+ --possibly-duplicated$`),
    );
    const listed = await runInShell(listing, dir, { PATH: await pathWithBin() });
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    for (const line of lines)
      expect(line).toMatch(
        / {2}failed {2}.*\(may be stored anyway: a request of it got no answer \(this run's or an earlier one's\)\)$/,
      );
    const failed = lines.map((line) => / (\S+) → cust-7 /.exec(line)![1]!);
    // More of them than the summary names: the first few, then a count.
    expect(failed.length).toBeGreaterThan(5);
    expect(first.stdout).toMatch(new RegExp(`uploaded, ${failed.length} failed`));
    expect(summary['may be stored']).toBe(
      `${failed.length} failed files sent without an answer may be on the entity anyway: ${failed.slice(0, 5).join(', ')} and ${failed.length - 5} more`,
    );
    expect(summary['may be stored twice']).toBeUndefined();

    // The same command without faults: the journal says they went out unanswered, so they are sent again, flagged.
    await server.close();
    const again = closeAfter(await startSandbox({ apiKey: KEY, org: 'acme', port: Number(new URL(server.url).port) }));
    const second = await runBin(args, { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(second.code).toBe(0);
    const twice = Object.fromEntries(
      second.stdout.split('\n').map((line) => [line.slice(0, 22).trim(), line.slice(22)]),
    );
    expect(twice['may be stored twice']).toMatch(
      new RegExp(
        `^${failed.length} uploaded files had an earlier attempt sent without an answer: ${failed.slice(0, 5).join(', ')} and ${failed.length - 5} more$`,
      ),
    );
    expect(twice['may be stored']).toBeUndefined();
    expect(again.stored.map((m) => `kyc/${m.name}`).sort()).toEqual([...failed].sort());
  });
});
