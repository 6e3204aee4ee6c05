import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How liveness is decided, for a journal and for a run's working folder alike. A holder renews
 * its lock every RENEW_MS (proper-lockfile touches the lock folder's mtime), so a lock renewed
 * within RENEWED_WITHIN_MS has a live holder, wherever it runs: another container, pod or
 * machine. One not renewed for STALE_MS is taken over. No pid is trusted across PID namespaces
 * or machines: only for a holder that ran in this PID namespace since this boot does its
 * process decide, alive while it exists (stopped too), dead at once when it is gone. Every takeover happens under a second lock
 * (`<resource>.takeover.lock`) and looks again before it removes anything, so two runs that
 * judged the same lock dead cannot both take it: the library's own stale removal, which has no
 * such guard, is never used.
 */
const STALE_MS = 20_000;
const RENEW_MS = 2_000;
const RENEWED_WITHIN_MS = 3 * RENEW_MS;
/** While a silent holder goes stale, or another run takes a lock over, the lock is tried again this often. */
const RETRY_MS = 250;
/** Longer than any run: proper-lockfile then never judges a lock stale itself. */
const NEVER = 10 * 365 * 24 * 3600 * 1000;
/** How long a refusal waits for a lock just taken to name its holder. */
const NAMING_MS = 1_000;
/** A takeover lasts milliseconds; one left by a run killed during it is removed after this. */
const TAKEOVER_STALE_MS = 5_000;

/** Who holds a lock, as its owner file (`<resource>.lock.json`, beside the lock folder) says. */
export interface Holder {
  pid: number;
  host: string;
  started: string;
  /** The PID namespace and boot the pid belongs to: only there does it name a process. */
  pidSpace: string | null;
  /** When that process started (in clock ticks since boot): a pid reused by another process started later. */
  startTicks: string | null;
  /** The lock folder it was written for: a later holder's folder is another one. */
  lock: { ino: number; birth: number };
  token: string;
}

/** A lock held by a live run: refused at once. */
export class LockBusy extends Error {
  constructor(
    readonly lockPath: string,
    readonly holder: Holder | undefined,
  ) {
    super(`${lockPath} is held by another run`);
  }
}

/** What acquire says while it waits for a silent holder's lock to go stale. */
export interface LockWait {
  holder: Holder | undefined;
  silentForMs: number;
  waitMs: number;
}

type Lockfile = typeof import('proper-lockfile');
// Loaded when a lock is first taken: a dry run, or a run without a journal, never loads it.
let lockfile: Promise<Lockfile> | undefined;
const loadLockfile = () =>
  (lockfile ??= import('proper-lockfile').then((m) => (m as { default?: Lockfile }).default ?? m));

/**
 * An exclusive hold on a resource (a journal, a run's working folder) for as long as a run
 * lives: proper-lockfile's lock folder `<resource>.lock`, renewed while held. Losing it (the
 * process was paused past STALE_MS and another run took it over) is told to `whenLost`.
 */
export class HeldLock {
  private lost: Error | undefined;
  private onLost: ((error: Error) => void) | undefined;
  private released = false;

  private constructor(
    readonly resource: string,
    private readonly token: string,
    private readonly unlock: () => Promise<void>,
  ) {}

  /** The lock folder. */
  get path(): string {
    return lockPathOf(this.resource);
  }

  /**
   * Takes the lock, or throws LockBusy when a live run holds it. A holder known dead is taken
   * over at once; one that stopped renewing is waited for until its lock goes stale (`onWait`
   * hears of it once), so a dead one is taken over in at most STALE_MS.
   */
  static async acquire(
    resource: string,
    options: { onWait?: (wait: LockWait) => void; signal?: AbortSignal } = {},
  ): Promise<HeldLock> {
    let told = false;
    const started = Date.now();
    for (;;) {
      options.signal?.throwIfAborted();
      const held = await HeldLock.take(resource);
      if (held) return held;
      const verdict = await judge(resource);
      // A holder names itself a moment after it takes the lock: the refusal waits for the name.
      if (verdict.kind === 'alive' && !verdict.holder && Date.now() - started < NAMING_MS) {
        await sleep(10);
        continue;
      }
      if (verdict.kind === 'alive') throw new LockBusy(lockPathOf(resource), verdict.holder);
      if (verdict.kind === 'dead' || verdict.kind === 'stale') {
        if (await removeIfStill(resource, verdict)) continue;
      } else if (verdict.kind === 'silent' && !told) {
        told = true;
        options.onWait?.({
          holder: verdict.holder,
          silentForMs: verdict.ageMs,
          waitMs: Math.max(0, STALE_MS - verdict.ageMs),
        });
      }
      await sleep(RETRY_MS, undefined, options.signal ? { signal: options.signal } : {});
    }
  }

  /** Takes the lock only if nobody live or recently live holds it: for removing what a dead run left. */
  /** Whether a live run holds the lock (alive or not yet stale), and who when it says: for a reader that takes no lock. */
  static async heldBy(resource: string): Promise<{ holder: Holder | undefined } | undefined> {
    const verdict = await judge(resource);
    return verdict.kind === 'alive' || verdict.kind === 'silent' ? { holder: verdict.holder } : undefined;
  }

  static async takeIfAbandoned(resource: string): Promise<HeldLock | undefined> {
    const verdict = await judge(resource);
    if (verdict.kind === 'alive' || verdict.kind === 'silent') return undefined;
    if (verdict.kind !== 'gone' && !(await removeIfStill(resource, verdict))) return undefined;
    return HeldLock.take(resource);
  }

  /** One try at the lock: undefined when it is held (by anyone, live or not). */
  private static async take(resource: string): Promise<HeldLock | undefined> {
    const { lock } = await loadLockfile();
    // The library may say the lock was lost only once it is ours: the callback finds it here then.
    const ours: { held?: HeldLock } = {};
    let unlock: () => Promise<void>;
    try {
      unlock = await lock(resource, {
        realpath: false,
        stale: NEVER,
        update: RENEW_MS,
        retries: 0,
        onCompromised: (error) => ours.held?.lose(error),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
      throw error;
    }
    const held = new HeldLock(resource, randomBytes(12).toString('hex'), unlock);
    ours.held = held;
    try {
      await held.nameHolder();
    } catch (error) {
      await held.release();
      throw error;
    }
    return held;
  }

  /** Calls `listener` when the lock is lost, or at once if it was already. */
  whenLost(listener: (error: Error) => void): void {
    this.onLost = listener;
    if (this.lost) listener(this.lost);
  }

  /** Gives the lock up (and the file naming its holder, if ours). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (!this.lost && this.token) {
      const owner = await readOwner(this.resource);
      if (owner?.token === this.token) await rm(ownerPathOf(this.resource), { force: true }).catch(() => {});
    }
    await this.unlock().catch(() => {}); // lost already: nothing of ours to remove
  }

  private lose(error: Error) {
    if (this.released) return;
    this.lost = Object.assign(
      new Error(
        `another run took the lock over after it went unrenewed for ${STALE_MS / 1000} s (was this run paused, or its machine asleep?)`,
      ),
      { code: 'ECOMPROMISED', cause: error },
    );
    this.onLost?.(this.lost);
  }

  /** Writes who holds the lock beside it, for a refused run to name and for a dead holder to be known dead. */
  private async nameHolder() {
    const folder = await stat(this.path, { bigint: false });
    const holder: Holder = {
      pid: process.pid,
      host: hostname(),
      started: new Date().toISOString(),
      pidSpace: pidSpace(),
      startTicks: startTicksOf(process.pid),
      lock: { ino: folder.ino, birth: folder.birthtimeMs },
      token: this.token,
    };
    // Made anew, never written through: a link planted at its name is not followed.
    const path = ownerPathOf(this.resource);
    await rm(path, { force: true });
    await writeFile(path, `${JSON.stringify(holder)}\n`, { flag: 'wx' });
  }
}

const lockPathOf = (resource: string) => `${resource}.lock`;
const ownerPathOf = (resource: string) => `${resource}.lock.json`;

type Verdict =
  | { kind: 'gone' }
  | {
      kind: 'dead' | 'alive' | 'silent' | 'stale';
      holder: Holder | undefined;
      ageMs: number;
      folder: { ino: number; birth: number; isFile: boolean };
    };

/**
 * Whether the lock's holder is alive, known dead, silent (not renewing, not yet stale) or stale
 * (not renewed for STALE_MS). In this PID namespace its process decides: alive while it exists
 * (also when it is stopped, Ctrl-Z, and renews nothing), dead once it is gone or its pid names
 * a process started since. Elsewhere the lock's renewal alone decides.
 */
async function judge(resource: string): Promise<Verdict> {
  const stats = await stat(lockPathOf(resource)).catch(() => undefined);
  if (!stats) return { kind: 'gone' };
  // A file, not a folder: the lock of an earlier version of the tool, judged by its age alone.
  const folder = { ino: stats.ino, birth: stats.birthtimeMs, isFile: stats.isFile() };
  const holder = folder.isFile ? undefined : await readOwner(resource);
  const ageMs = Date.now() - stats.mtimeMs;
  const describes = holder !== undefined && holder.lock.ino === folder.ino && holder.lock.birth === folder.birth;
  const here = pidSpace();
  if (describes && here !== null && holder.pidSpace === here) {
    const alive =
      processExists(holder.pid) && (holder.startTicks === null || holder.startTicks === startTicksOf(holder.pid));
    return { kind: alive ? 'alive' : 'dead', holder, ageMs, folder };
  }
  // The owner file of an earlier lock says nothing of this one's holder.
  const named = describes ? holder : undefined;
  if (ageMs <= RENEWED_WITHIN_MS) return { kind: 'alive', holder: named, ageMs, folder };
  return { kind: ageMs > STALE_MS ? 'stale' : 'silent', holder: named, ageMs, folder };
}

/**
 * Removes a lock judged dead or stale, if it is still that very lock and still so, under the
 * takeover lock: one run at a time. False when another run is taking it over (try again soon).
 */
async function removeIfStill(resource: string, judged: Extract<Verdict, { folder: unknown }>): Promise<boolean> {
  const { lock } = await loadLockfile();
  let release: () => Promise<void>;
  try {
    release = await lock(`${resource}.takeover`, {
      realpath: false,
      stale: TAKEOVER_STALE_MS,
      retries: 0,
      onCompromised: () => {},
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') return false;
    throw error;
  }
  try {
    const now = await judge(resource);
    const same =
      now.kind !== 'gone' && now.folder.ino === judged.folder.ino && now.folder.birth === judged.folder.birth;
    if (same && (now.kind === 'dead' || now.kind === 'stale')) {
      if (now.holder) await rm(ownerPathOf(resource), { force: true });
      const remove = now.folder.isFile ? rm(lockPathOf(resource)) : rmdir(lockPathOf(resource));
      await remove.catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
    return true;
  } finally {
    await release().catch(() => {});
  }
}

async function readOwner(resource: string): Promise<Holder | undefined> {
  try {
    const value = JSON.parse(await readFile(ownerPathOf(resource), 'utf8')) as Partial<Holder>;
    if (
      typeof value.pid === 'number' &&
      typeof value.host === 'string' &&
      typeof value.token === 'string' &&
      typeof value.lock?.ino === 'number'
    )
      return value as Holder;
  } catch {
    // Missing, or half written: it names nobody.
  }
  return undefined;
}

let pidSpaceOfThis: string | null | undefined;

/** This process's PID namespace and boot (`pid:[4026531836]@<boot id>`), or null where the system does not say. */
export function pidSpace(): string | null {
  if (pidSpaceOfThis === undefined) {
    try {
      pidSpaceOfThis = `${readlinkSync('/proc/self/ns/pid')}@${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}`;
    } catch {
      pidSpaceOfThis = null;
    }
  }
  return pidSpaceOfThis;
}

/** A process's start time, in clock ticks since boot (field 22 of /proc/<pid>/stat); null where the system does not say. */
function startTicksOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces: the fields are counted after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}
