import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultJournalName, stateDir } from '../../src/core/journal/place.js';
import { startSandbox } from '../../src/sandbox/server.js';
import { closeAfter, fixtureCopy, runBin } from '../helpers.js';
import { createProgram, type Actions } from '../../src/cli/program.js';

const summaryOf = (events: Record<string, unknown>[]) => events.find((e) => e.event === 'summary')!;

/** A user's machine: one state folder for every run, as XDG_STATE_HOME (or HOME) gives it. */
async function machine() {
  const state = await mkdtemp(join(tmpdir(), 'u21-user-state-'));
  const server = closeAfter(await startSandbox({ apiKey: 'k', org: 'acme' }));
  const dir = await fixtureCopy();
  const env = { U21_API_KEY: 'k', XDG_STATE_HOME: state };
  const upload = (...extra: string[]) =>
    runBin(['upload', '.', '--entity', 'cust-1', '--org', 'acme', '--base-url', server.url, '--json', ...extra], {
      cwd: dir,
      env,
    });
  const journal = (...args: string[]) =>
    runBin(['journal', ...args, '--org', 'acme', '--base-url', server.url], { cwd: dir, env });
  return { state, server, dir, env, upload, journal };
}

describe('the default journal (built binary)', () => {
  it('makes the same command, run twice with no flag, store each file once', async () => {
    const { state, server, upload } = await machine();
    const first = await upload();
    expect(first.code).toBe(0);
    const stored = server.stored.length;
    expect(stored).toBeGreaterThan(3);
    const path = join(state, 'u21-media', defaultJournalName(`${server.url}/v1`, 'acme'));
    expect(summaryOf(first.events)).toMatchObject({ uploaded: stored, journal: path });

    const second = await upload();
    expect(second.code).toBe(0);
    expect(server.stored).toHaveLength(stored);
    expect(summaryOf(second.events)).toMatchObject({ uploaded: 0, skipped: stored, journal: path });
    const skips = second.events.filter((e) => e.event === 'skipped');
    expect(skips).toHaveLength(stored);
    // Each skip says when the file was stored, and by which journal.
    for (const skip of skips)
      expect(skip).toMatchObject({
        reason: 'journal',
        message: expect.stringMatching(
          new RegExp(
            `^already uploaded at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z, as ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} records$`,
          ),
        ),
      });
    // Beside it, its index: the next run reads only the lines added since.
    const name = defaultJournalName(`${server.url}/v1`, 'acme');
    expect((await readdir(join(state, 'u21-media'))).sort()).toEqual([`.${name}.index`, name]);
  });

  it('keeps no journal with --no-journal, and one per org and host', async () => {
    const { state, server, upload } = await machine();
    expect((await upload('--no-journal')).code).toBe(0);
    const once = server.stored.length;
    const again = await upload('--no-journal');
    expect(summaryOf(again.events)).toMatchObject({ uploaded: once, journal: null });
    expect(server.stored).toHaveLength(2 * once);
    expect(await readdir(state)).toEqual([]);

    // Another org on the same host has a journal of its own: nothing of acme's is skipped there.
    const other = closeAfter(await startSandbox({ apiKey: 'k', org: 'beta' }));
    await upload();
    const beta = await runBin(
      ['upload', '.', '--entity', 'cust-1', '--org', 'beta', '--base-url', other.url, '--json'],
      { cwd: await fixtureCopy(), env: { U21_API_KEY: 'k', XDG_STATE_HOME: state } },
    );
    expect(summaryOf(beta.events)).toMatchObject({ uploaded: once, skipped: 0 });
    expect((await readdir(join(state, 'u21-media'))).filter((name) => !name.endsWith('.index'))).toHaveLength(2);
  });

  it('shows what the journal holds, and forgets an entity so that its files are sent again', async () => {
    const { server, upload, journal, dir, env } = await machine();
    await upload();
    const stored = server.stored.length;
    await runBin(['upload', '.', '--entity', 'cust-2', '--org', 'acme', '--base-url', server.url, '-q'], {
      cwd: dir,
      env,
    });
    expect(server.stored).toHaveLength(2 * stored);

    const shown = await journal('show');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`${2 * stored} uploads to 2 entities in 2 runs`);
    const perEntity = await journal('show', '--entity', 'cust-2');
    expect(perEntity.stdout.trim().split('\n')).toHaveLength(stored);

    const forgot = await journal('forget', '--entity', 'cust-1');
    expect(forgot.code).toBe(0);
    expect(forgot.stdout).toContain(`(${stored} uploads); the next run sends those files again`);
    const again = await upload();
    expect(summaryOf(again.events)).toMatchObject({ uploaded: stored, skipped: 0 });
    expect(server.stored.filter((m) => m.objectId === 'cust-1')).toHaveLength(2 * stored);
    // cust-2 is still remembered.
    const other = await runBin(
      ['upload', '.', '--entity', 'cust-2', '--org', 'acme', '--base-url', server.url, '--json'],
      { cwd: dir, env },
    );
    expect(summaryOf(other.events)).toMatchObject({ uploaded: 0, skipped: stored });
  });

  it('forgets one run by its id, and refuses to rewrite a journal a run holds', async () => {
    const { server, upload, journal, state } = await machine();
    const first = await upload();
    const runId = summaryOf(first.events).run_id as string;
    const path = summaryOf(first.events).journal as string;
    expect((await journal('forget', '--run', 'no-such-run')).stdout).toContain('nothing recorded for run no-such-run');
    expect((await journal('forget', '--run', runId)).stdout).toContain(`(${server.stored.length} uploads)`);
    expect((await readFile(path, 'utf8')).trim()).toBe('');

    // A live run's lock (this process) keeps the journal as it is.
    await writeFile(
      `${path}.lock`,
      `${JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), started: new Date().toISOString(), token: 'x' })}\n`,
    );
    const busy = await journal('forget', '--run', runId);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain('is in use by another run');
    const name = defaultJournalName(`${server.url}/v1`, 'acme');
    expect((await readdir(join(state, 'u21-media'))).sort()).toEqual([`.${name}.index`, name, `${name}.lock`]);
  });

  it('leaves no journal behind when the host never answered: a mistyped host does not add one to `journal list`', async () => {
    const { state, server, dir, env } = await machine();
    const gone = server.url;
    await server.close();
    const run = await runBin(['upload', '.', '--entity', 'cust-1', '--org', 'acme', '--base-url', gone, '--json'], {
      cwd: dir,
      env,
    });
    expect(run.code).toBe(1);
    expect(summaryOf(run.events)).toMatchObject({ stopped: 'unreachable', uploaded: 0, journal: null });
    expect(await readdir(join(state, 'u21-media'))).toEqual([]);
    expect((await runBin(['journal', 'list'], { cwd: dir, env })).stdout).toBe(
      `no journals in ${join(state, 'u21-media')}\n`,
    );

    // A host that answers keeps its journal, listed under a header.
    const live = closeAfter(await startSandbox({ apiKey: 'k', org: 'acme' }));
    await runBin(['upload', '.', '--entity', 'cust-1', '--org', 'acme', '--base-url', live.url, '-q'], {
      cwd: dir,
      env,
    });
    const listed = (await runBin(['journal', 'list'], { cwd: dir, env })).stdout.split('\n');
    expect(listed[0]).toBe(`${'last written'.padEnd(24)}  ${'size'.padStart(9)}  journal`);
    expect(listed[1]).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +[\\d.]+ kB  ${join(state, 'u21-media', defaultJournalName(`${live.url}/v1`, 'acme')).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      ),
    );
  });

  it('names in its messages and hints only options the journal command takes', async () => {
    const { server, upload, state, dir, env } = await machine();
    const first = await upload();
    const path = summaryOf(first.events).journal as string;
    await writeFile(
      `${path}.lock`,
      `${JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), started: new Date().toISOString(), token: 'x' })}\n`,
    );
    const program = createProgram('0', {} as Actions, () => {}, {});
    const takes = (name: string) =>
      new Set([
        '--help',
        ...program.commands
          .find((c) => c.name() === 'journal')!
          .commands.find((c) => c.name() === name)!
          .options.map((o) => o.long),
      ]);
    const cases: Array<[string, string[]]> = [
      ['show', []],
      ['show', ['--org', 'beta', '--base-url', server.url]],
      ['show', ['no-such.jsonl']],
      ['forget', ['--org', 'acme', '--base-url', server.url]],
      ['forget', ['--run', 'r1']],
      ['forget', ['--run', 'r1', '--org', 'acme', '--base-url', server.url]],
      ['forget', ['--entity', 'c1', 'no-such.jsonl']],
    ];
    for (const [command, args] of cases) {
      const result = await runBin(['journal', command, ...args], { cwd: dir, env: { ...env, XDG_STATE_HOME: state } });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(/hint: /);
      for (const flag of result.stderr.match(/--[a-z][a-z-]*/g) ?? [])
        expect(takes(command), `${command}: ${result.stderr}`).toContain(flag);
    }
    const busy = await runBin(['journal', 'forget', '--run', 'r1', '--org', 'acme', '--base-url', server.url], {
      cwd: dir,
      env,
    });
    expect(busy.stderr).toContain(`u21-media: error: journal forget: ${path} is in use by another run`);
    expect(busy.stderr).toContain(
      'hint: wait for that run to end, then run this again; a lock left by a killed run is taken over',
    );
    const missing = await runBin(['journal', 'show', 'no-such.jsonl'], { cwd: dir, env });
    expect(missing.stderr).toContain(
      'hint: see `u21-media journal list`; a journal the runs were given by path is named so: u21-media journal show <file>',
    );
  });

  it('names the state folder it cannot create, with the way out, and sends nothing', async () => {
    const server = closeAfter(await startSandbox({ apiKey: 'k', org: 'acme' }));
    const dir = await fixtureCopy();
    await writeFile(join(dir, 'state-file'), 'not a folder');
    const result = await runBin(['upload', '.', '--entity', 'c', '--org', 'acme', '--base-url', server.url], {
      cwd: dir,
      env: { U21_API_KEY: 'k', XDG_STATE_HOME: join(dir, 'state-file') },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `cannot create the journal folder ${join(dir, 'state-file', 'u21-media')} (ENOTDIR)`,
    );
    expect(result.stderr).toContain('--no-journal');
    expect(server.requests).toHaveLength(0);
  });
});

describe('the state folder', () => {
  it('is $XDG_STATE_HOME/u21-media, else ~/.local/state/u21-media', () => {
    expect(stateDir({ XDG_STATE_HOME: '/s', HOME: '/h' })).toBe('/s/u21-media');
    expect(stateDir({ HOME: '/h' })).toBe('/h/.local/state/u21-media');
    expect(stateDir({ XDG_STATE_HOME: '', HOME: '/h' })).toBe('/h/.local/state/u21-media');
    expect(stateDir({})).toBeUndefined();
  });

  it('keeps apart hosts and orgs that would read the same as file names', () => {
    const names = [
      defaultJournalName('https://api.unit21.com/v1', 'acme'),
      defaultJournalName('https://api.unit21.com/v1', 'ac/me'),
      defaultJournalName('https://api.unit21.com/v1', 'ac me'),
      defaultJournalName('https://api.prod2.unit21.com/v1', 'acme'),
    ];
    expect(new Set(names).size).toBe(4);
    expect(names[0]).toMatch(/^api\.unit21\.com_v1__acme__[0-9a-f]{6}\.jsonl$/);
    for (const name of names) expect(name).not.toContain('/');
  });
});
