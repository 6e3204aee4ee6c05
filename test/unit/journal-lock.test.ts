import { execFile } from 'node:child_process';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { JournalLock } from '../../src/core/journal-lock.js';
import { ROOT, tempDir } from '../helpers.js';

const holder = (extra: Record<string, unknown>) => JSON.stringify({ pid: 999_999_999, host: hostname(), started: '2026-12-01T00:00:00.000Z', token: 'old', ...extra });
const gone = (path: string) => stat(path).then(() => false, () => true);

describe('journal lock', () => {
  it('refuses a second hold while the first lives, naming its process, and is free again once released', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    const first = await JournalLock.acquire(journal);
    await expect(JournalLock.acquire(journal)).rejects.toThrow(`--journal: ${journal} is in use by another run (pid ${process.pid} on this machine, since `);
    first.release();
    expect(await gone(`${journal}.lock`)).toBe(true);
    (await JournalLock.acquire(journal)).release();
  });

  it.each([
    ['its process is gone', holder({})],
    ['it names this process, which does not hold it (a restarted container)', holder({ pid: process.pid })],
  ])('takes over a lock left by a killed run: %s', async (_, text) => {
    const journal = join(await tempDir(), 'j.jsonl');
    await writeFile(`${journal}.lock`, text);
    const lock = await JournalLock.acquire(journal);
    expect(JSON.parse(await readFile(`${journal}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
  });

  it('trusts a lock from another machine until it goes untouched for a minute', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await writeFile(`${journal}.lock`, holder({ host: 'worker-3', pid: 42 }));
    await expect(JournalLock.acquire(journal)).rejects.toThrow('(pid 42 on worker-3, since 2026-12-01T00:00:00.000Z)');
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    await utimes(`${journal}.lock`, twoMinutesAgo, twoMinutesAgo);
    (await JournalLock.acquire(journal)).release();
  });

  it('waits out a lock file still being written, and takes over one left half written', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await writeFile(`${journal}.lock`, '');
    // Heard before the lock is written: it may be refused before that write's callback comes.
    const refused = expect(JournalLock.acquire(journal)).rejects.toThrow('(pid 42 on worker-3, since ');
    await writeFile(`${journal}.lock`, holder({ host: 'worker-3', pid: 42 })); // its writer names itself
    await refused;
    await writeFile(`${journal}.lock`, '{"pid":');
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await utimes(`${journal}.lock`, aMinuteAgo, aMinuteAgo);
    (await JournalLock.acquire(journal)).release();
  });

  it('gives up only its own lock', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    const lock = await JournalLock.acquire(journal);
    await writeFile(`${journal}.lock`, holder({ pid: 1, token: 'someone else' }));
    lock.release();
    expect(await gone(`${journal}.lock`)).toBe(false);
  });

  it('lets exactly one of many processes take over the same stale lock', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await writeFile(`${journal}.lock`, holder({}));
    const script = `import { JournalLock } from ${JSON.stringify(join(ROOT, 'dist', 'core', 'journal-lock.js'))};
      try { await JournalLock.acquire(process.argv[1]); console.log('held'); await new Promise((r) => setTimeout(r, 3000)); } catch { console.log('refused'); }`;
    const run = () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, journal]).then((r) => r.stdout.trim());
    const outcomes = await Promise.all(Array.from({ length: 8 }, run));
    expect(outcomes.filter((o) => o === 'held')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'refused')).toHaveLength(7);
  }, 30_000);
});
