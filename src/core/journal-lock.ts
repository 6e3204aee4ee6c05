import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from './errors.js';

/** Who holds a journal, as its lock file says. */
interface Holder {
  pid: number;
  host: string;
  started: string;
  token: string;
}

/** A holder touches its lock this often, so a lock from a machine that went away is seen as stale. */
const HEARTBEAT_MS = 10_000;
/** A lock untouched for this long is stale whoever wrote it (the holder stopped, or its pid was reused). */
const STALE_AFTER_MS = 60_000;
/** A lock file that cannot be read yet is being written; after this long it was left half written. */
const UNREADABLE_STALE_AFTER_MS = 5_000;

/** The locks this process holds, by token: a lock with our pid is ours only if listed here. */
const heldHere = new Set<string>();

/**
 * An exclusive hold on a journal for a run's whole life: `<journal>.lock`, created only if
 * absent, naming the process that holds it. A second run on the journal is refused while the
 * holder lives; a lock left by a killed run (its process gone, or not touched for a minute) is
 * taken over, by one run only, under a short-lived `<journal>.lock.takeover`.
 */
export class JournalLock {
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    private readonly path: string,
    private readonly token: string,
  ) {
    this.heartbeat = setInterval(() => {
      const now = new Date();
      utimes(path, now, now).catch(() => {});
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Takes the lock of the journal at `journalPath`, or throws a UsageError naming the run that holds it. */
  static async acquire(journalPath: string): Promise<JournalLock> {
    const path = `${journalPath}.lock`;
    const me: Holder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), token: randomBytes(12).toString('hex') };
    for (let takeovers = 0; ; ) {
      try {
        await writeFile(path, `${JSON.stringify(me)}\n`, { flag: 'wx' });
        heldHere.add(me.token);
        return new JournalLock(path, me.token);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          await unlink(path).catch(() => {}); // created but not written (a full disk): leave no empty lock behind
          throw lockError(journalPath, path, error as NodeJS.ErrnoException);
        }
      }
      const held = await readHolder(path);
      if (held === undefined) continue; // released just now
      if (!isStale(held)) {
        // Created but not yet written: the holder is a moment from naming itself.
        if (!held.holder) {
          await sleep(10);
          continue;
        }
        throw busy(journalPath, path, held.holder);
      }
      if (++takeovers > 50) throw busy(journalPath, path, held.holder); // never reached but by a lock that keeps coming back
      await takeOver(path, held.text);
    }
  }

  /** Gives the lock up, if it is still ours. */
  release(): void {
    clearInterval(this.heartbeat);
    heldHere.delete(this.token);
    try {
      if ((JSON.parse(readFileSync(this.path, 'utf8')) as Partial<Holder>).token === this.token) unlinkSync(this.path);
    } catch {
      // Gone or unreadable: nothing of ours to remove.
    }
  }
}

async function readHolder(path: string): Promise<{ text: string; holder: Holder | undefined; ageMs: number } | undefined> {
  try {
    const [text, stats] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let holder: Holder | undefined;
    try {
      const parsed = JSON.parse(text) as Partial<Holder>;
      if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.token === 'string') holder = parsed as Holder;
    } catch {
      // Half written: judged by its age.
    }
    return { text, holder, ageMs: Date.now() - stats.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function isStale({ holder, ageMs }: { holder: Holder | undefined; ageMs: number }): boolean {
  if (!holder) return ageMs > UNREADABLE_STALE_AFTER_MS;
  if (ageMs > STALE_AFTER_MS) return true;
  if (holder.host !== hostname()) return false;
  // Our own pid in a lock this process does not hold: a killed run in an earlier container of this name.
  if (holder.pid === process.pid) return !heldHere.has(holder.token);
  return !processExists(holder.pid);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Removes the stale lock, if it is still the one judged stale; one run at a time, so two cannot both replace it. */
async function takeOver(path: string, staleText: string): Promise<void> {
  const takeover = `${path}.takeover`;
  try {
    await writeFile(takeover, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another run is taking over, or one died doing it (a takeover lasts milliseconds).
    const age = await stat(takeover).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > UNREADABLE_STALE_AFTER_MS) await unlink(takeover).catch(() => {});
    else await sleep(20);
    return;
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === staleText) await unlink(path).catch(() => {});
  } finally {
    await unlink(takeover).catch(() => {});
  }
}

function busy(journalPath: string, lockPath: string, holder: Holder | undefined): UsageError {
  const who = holder
    ? `pid ${holder.pid} ${holder.host === hostname() ? 'on this machine' : `on ${holder.host}`}, since ${holder.started}`
    : `its lock ${lockPath} is being written`;
  return new UsageError(
    `--journal: ${journalPath} is in use by another run (${who})`,
    `wait for that run to end, or give another --journal (or --no-journal); a lock left by a killed run is taken over (on another machine, after a minute)`,
  );
}

function lockError(journalPath: string, lockPath: string, error: NodeJS.ErrnoException): UsageError {
  return new UsageError(`--journal: cannot lock ${journalPath} (${error.code ?? error.message} on ${lockPath})`, 'the journal\'s folder must be writable: the lock file goes beside it');
}
