import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HeldLock, pidSpace } from '../../src/core/disk/held-lock.js';
import { JournalLock } from '../../src/core/journal/lock.js';
import { ROOT, tempDir } from '../helpers.js';

const gone = (path: string) =>
  stat(path).then(
    () => false,
    () => true,
  );
const ago = (ms: number) => new Date(Date.now() - ms);

/** A lock folder and owner file as a run elsewhere would leave them: renewed `ageMs` ago. */
async function leftLock(journal: string, owner: Record<string, unknown>, ageMs: number) {
  await mkdir(`${journal}.lock`);
  const folder = await stat(`${journal}.lock`);
  const holder = {
    pid: 999_999_999,
    host: hostname(),
    started: '2026-12-01T00:00:00.000Z',
    pidSpace: pidSpace(),
    lock: { ino: folder.ino, birth: folder.birthtimeMs },
    token: 'theirs',
    ...owner,
  };
  await writeFile(`${journal}.lock.json`, JSON.stringify(holder));
  await utimes(`${journal}.lock`, ago(ageMs), ago(ageMs));
}

describe('journal lock', () => {
  it('refuses a second hold while the first lives, naming its process, and is free again once released', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    const first = await JournalLock.acquire(journal);
    await expect(JournalLock.acquire(journal)).rejects.toThrow(
      `--journal: ${journal} is in use by another run (pid ${process.pid} on this machine, since `,
    );
    await first.release();
    expect(await gone(`${journal}.lock`)).toBe(true);
    expect(await gone(`${journal}.lock.json`)).toBe(true);
    await (await JournalLock.acquire(journal)).release();
  });

  it('takes over at once a lock whose holder ran in this PID namespace and is gone', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await leftLock(journal, {}, 0);
    const lock = await JournalLock.acquire(journal);
    expect(JSON.parse(await readFile(`${journal}.lock.json`, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
  });

  it('never judges a holder in another PID namespace dead by its pid: refused while its lock is renewed, taken over once stale', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    // pid 2 in another container of this host: a pid that means nothing here.
    await leftLock(journal, { pid: 2, pidSpace: 'pid:[4026532999]@another-boot' }, 0);
    await expect(JournalLock.acquire(journal)).rejects.toThrow(
      `(pid 2 on ${hostname()} (another container), since 2026-12-01T00:00:00.000Z)`,
    );
    await utimes(`${journal}.lock`, ago(30_000), ago(30_000));
    await (await JournalLock.acquire(journal)).release();
  });

  it('waits for a holder that stopped renewing its lock, saying so once, and takes it over once stale', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await leftLock(journal, { pid: 42, host: 'worker-3', pidSpace: 'pid:[4026532999]@another-boot' }, 19_000);
    const waits: string[] = [];
    const lock = await JournalLock.acquire(journal, { onWait: (message) => waits.push(message) });
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatch(
      new RegExp(
        `^${journal} is held by pid 42 on worker-3, since 2026-12-01T00:00:00.000Z, whose lock has not been renewed for 19 s; waiting up to [12] s for it to go stale$`,
      ),
    );
    await lock.release();
  });

  it('never takes over a holder in this PID namespace while its process lives, even stopped (Ctrl-Z) past the staleness', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    const script = `import { JournalLock } from ${JSON.stringify(join(ROOT, 'dist', 'core', 'journal', 'lock.js'))};
      await JournalLock.acquire(process.argv[1]); console.log('held'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, journal], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      child.kill('SIGSTOP');
      await utimes(`${journal}.lock`, ago(60_000), ago(60_000)); // as if stopped a minute ago
      await expect(JournalLock.acquire(journal)).rejects.toThrow(
        `is in use by another run (pid ${child.pid} on this machine, since `,
      );
    } finally {
      child.kill('SIGKILL');
      child.kill('SIGCONT');
    }
    await new Promise((resolve) => child.once('close', resolve));
    // Gone now: taken over at once.
    await (await JournalLock.acquire(journal)).release();
  });

  it('takes over the lock file an earlier version of the tool left, once it is old', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await writeFile(
      `${journal}.lock`,
      JSON.stringify({ pid: 42, host: 'worker-3', started: '2026-12-01T00:00:00.000Z', token: 'old' }),
    );
    await utimes(`${journal}.lock`, ago(30_000), ago(30_000));
    await (await JournalLock.acquire(journal)).release();
    expect(await gone(`${journal}.lock`)).toBe(true);
  });

  it("does not take an earlier lock's owner file for the holder of this one", async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    await leftLock(journal, { lock: { ino: 1, birth: 0 } }, 0);
    await expect(JournalLock.acquire(journal)).rejects.toThrow('is in use by another run (it is just starting)');
  });

  it('tells the holder when another run took its lock over, and then gives up nothing of the new holder', async () => {
    const journal = join(await tempDir(), 'j.jsonl');
    const first = await HeldLock.acquire(journal);
    const lost = new Promise<Error>((resolve) => first.whenLost(resolve));
    // A holder in another PID namespace (its pid means nothing here), paused past the lock's staleness: another run takes it over.
    const owner = JSON.parse(await readFile(`${journal}.lock.json`, 'utf8')) as Record<string, unknown>;
    await writeFile(`${journal}.lock.json`, JSON.stringify({ ...owner, pidSpace: 'pid:[4026532999]@another-boot' }));
    await utimes(`${journal}.lock`, ago(30_000), ago(30_000));
    const second = await HeldLock.acquire(journal);
    expect((await lost).message).toMatch(/^another run took the lock over after it went unrenewed for 20 s/);
    await first.release();
    expect(await gone(`${journal}.lock`)).toBe(false);
    expect(JSON.parse(await readFile(`${journal}.lock.json`, 'utf8'))).toMatchObject({ pid: process.pid });
    await second.release();
    expect(await gone(`${journal}.lock`)).toBe(true);
  }, 15_000);

  it.each([
    ['dead lock (its holder gone from this PID namespace)', {}, 0],
    ['stale lock (unrenewed, from another machine)', { pidSpace: 'pid:[4026532999]@another-boot' }, 30_000],
  ])(
    'lets exactly one of many processes take over the same %s',
    async (_, owner, ageMs) => {
      const journal = join(await tempDir(), 'j.jsonl');
      await leftLock(journal, owner, ageMs);
      const script = `import { JournalLock } from ${JSON.stringify(join(ROOT, 'dist', 'core', 'journal', 'lock.js'))};
      try { const lock = await JournalLock.acquire(process.argv[1]); console.log('held'); await new Promise((r) => setTimeout(r, 3000)); await lock.release(); } catch { console.log('refused'); }`;
      const run = () =>
        promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, journal]).then((r) =>
          r.stdout.trim(),
        );
      const outcomes = await Promise.all(Array.from({ length: 8 }, run));
      expect(outcomes.filter((o) => o === 'held')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'refused')).toHaveLength(7);
    },
    30_000,
  );
});
