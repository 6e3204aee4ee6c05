import { open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, runBin, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, pdfs, timesStored } from './attack-helpers.js';

function args(target: string[], server: Sandbox, extra: string[]) {
  return ['upload', ...target, ...toSandbox(server), '--json', ...extra];
}

describe('a journal record counts only where its file went', () => {
  it('sandbox, then production, with the same --journal: the second host receives every file, and a rerun there skips them', async () => {
    const dir = await pdfs(10);
    const journal = join(await tempDir(), 'journal.jsonl');
    const sandbox = closeAfter(await startSandbox());
    const production = closeAfter(await startSandbox());
    const env = { U21_API_KEY: sandbox.apiKey };
    const first = await runBin(args([dir, '--entity', 'cust-1'], sandbox, ['--journal', journal]), { cwd: dir, env });
    expect(first.code, first.stderr).toBe(0);
    expect(sandbox.stored).toHaveLength(10);

    const second = await runBin(args([dir, '--entity', 'cust-1'], production, ['--journal', journal]), {
      cwd: dir,
      env,
    });
    expect(second.code, second.stderr).toBe(0);
    expect(second.events.at(-1)).toMatchObject({ uploaded: 10, skipped: 0 });
    expect([...timesStored(production).values()]).toEqual(Array(10).fill(1));
    // Each record names the host it was written for.
    const hosts = (await readFile(journal, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { host: string }).host);
    expect(new Set(hosts)).toEqual(new Set([`${sandbox.url}/v1`, `${production.url}/v1`]));

    const again = await runBin(args([dir, '--entity', 'cust-1'], production, ['--journal', journal]), {
      cwd: dir,
      env,
    });
    expect(again.code).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ uploaded: 0, skipped: 10 });
    expect(production.stored).toHaveLength(10);
  }, 30_000);

  it('records from before records named their host: adopted by the default journal of the host; a --journal file is refused until --adopt-old-records', async () => {
    const dir = await pdfs(5);
    const server = closeAfter(await startSandbox());
    const state = await tempDir();
    const env = { U21_API_KEY: server.apiKey, XDG_STATE_HOME: state };
    const first = await runBin(args([dir, '--entity', 'cust-1'], server, []), { cwd: dir, env });
    expect(first.code).toBe(0);
    // As an earlier version wrote them: no host in any record.
    const strip = async (path: string) =>
      writeFile(path, (await readFile(path, 'utf8')).replace(/"host":"[^"]*",/g, ''));
    const journal = String(first.events.at(-1)!.journal);
    await strip(journal);
    const resumed = await runBin(args([dir, '--entity', 'cust-1'], server, []), { cwd: dir, env });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.events.at(-1)).toMatchObject({ uploaded: 0, skipped: 5 });
    expect(resumed.events.find((e) => e.event === 'warning')).toMatchObject({
      message: `${journal}: 10 records from before records named their API host now name ${server.url}/v1, where this run sends`,
    });

    const explicit = join(await tempDir(), 'backfill.jsonl');
    await writeFile(explicit, await readFile(journal, 'utf8'));
    await strip(explicit);
    const refused = await runBin(args([dir, '--entity', 'cust-1'], server, ['--journal', explicit]), { cwd: dir, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `--journal: ${explicit} holds 10 records from before records named their API host, so it cannot say where their files went`,
    );
    expect(refused.stderr).toContain('pass --adopt-old-records once');
    const adopted = await runBin(
      args([dir, '--entity', 'cust-1'], server, ['--journal', explicit, '--adopt-old-records']),
      { cwd: dir, env },
    );
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.events.at(-1)).toMatchObject({ uploaded: 0, skipped: 5 });
    expect(server.stored).toHaveLength(5);
  }, 30_000);

  it('--retry-failed with a report from another host or org is refused before sending; --retry-elsewhere sends it here', async () => {
    const dir = await pdfs(5);
    const out = await tempDir();
    const first = closeAfter(await startSandbox({ entities: ['cust-1'] }));
    const other = closeAfter(await startSandbox());
    const env = { U21_API_KEY: first.apiKey };
    const failing = await runBin(args([dir, '--entity', 'cust-9'], first, ['--no-journal', '--report', 'report.csv']), {
      cwd: out,
      env,
    });
    expect(failing.code).toBe(1);
    expect(failing.events.at(-1)).toMatchObject({ failed: 5 });

    const toOtherHost = await runBin(
      ['upload', '--retry-failed', 'report.csv', '--org', other.org, '--base-url', other.url, '--no-journal', '--json'],
      { cwd: out, env },
    );
    expect(toOtherHost.code, toOtherHost.stderr).toBe(2);
    expect(toOtherHost.stderr).toContain(
      `✖ report.csv:3: the report's run sent it to ${first.url}/v1 (org sandbox), and this run sends to ${other.url}/v1 (org sandbox); give that run's --env or --base-url and --org, or pass --retry-elsewhere to send it here`,
    );
    expect(toOtherHost.stderr).toContain('… and 2 more:');
    expect(other.requests).toHaveLength(0);

    const toOtherOrg = await runBin(
      [
        'upload',
        '--retry-failed',
        'report.csv',
        '--org',
        'another-org',
        '--base-url',
        first.url,
        '--no-journal',
        '--json',
      ],
      { cwd: out, env },
    );
    expect(toOtherOrg.code).toBe(2);
    expect(toOtherOrg.stderr).toContain('(org sandbox), and this run sends to');
    expect(first.requests).toHaveLength(5);

    const elsewhere = await runBin(
      [
        'upload',
        '--retry-failed',
        'report.csv',
        '--retry-elsewhere',
        '--org',
        other.org,
        '--base-url',
        other.url,
        '--no-journal',
        '--json',
      ],
      { cwd: out, env },
    );
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(other.stored.map((m) => m.name).sort()).toEqual([
      'doc_000.pdf',
      'doc_001.pdf',
      'doc_002.pdf',
      'doc_003.pdf',
      'doc_004.pdf',
    ]);
    expect(other.stored.every((m) => m.objectId === 'cust-9')).toBe(true);
  }, 30_000);

  it('an edit in the middle of the journal that keeps its size is noticed: the file no longer recorded as uploaded is sent again', async () => {
    const dir = await pdfs(60);
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox());
    const env = { U21_API_KEY: server.apiKey };
    const first = await runBin(args([dir, '--entity', 'cust-1'], server, ['--journal', journal]), { cwd: dir, env });
    expect(first.code).toBe(0);
    const text = await readFile(journal, 'utf8');
    expect(text.length).toBeGreaterThan(16 * 1024); // its middle is far from its first and last 4 KB
    // doc_030's upload, edited in place into a failure of the same length, its mtime put back.
    const line = text.split('\n').find((l) => l.includes('"outcome":"uploaded"') && l.includes('doc_030.pdf'))!;
    const at = Buffer.byteLength(text.slice(0, text.indexOf(line) + line.indexOf('"outcome":"uploaded"')));
    const before = await stat(journal);
    const file = await open(journal, 'r+');
    await file.write('"outcome":"failed"  ', at);
    await file.close();
    await utimes(journal, before.atime, before.mtime);
    expect((await stat(journal)).size).toBe(before.size);

    const rerun = await runBin(args([dir, '--entity', 'cust-1'], server, ['--journal', journal]), { cwd: dir, env });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.events.filter((e) => e.event === 'uploaded').map((e) => String(e.path).split('/').at(-1))).toEqual([
      'doc_030.pdf',
    ]);
    expect(rerun.events.at(-1)).toMatchObject({ uploaded: 1, skipped: 59 });
    expectAccountedFor(rerun.events, 60);
    expect(timesStored(server).get('doc_030.pdf')).toBe(2);
  }, 30_000);
});
