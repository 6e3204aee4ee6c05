import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskTable, TableWriteError, writing } from './disk-table.js';
import { HeldLock } from './held-lock.js';
import { UsageError } from './errors.js';

/** A run's working folder: `run-<id>` in the user's folder under $TMPDIR, with its lock and owner file beside it. */
const RUN_FOLDER = /^run-([0-9a-f]{12})(?:\.takeover\.lock|\.lock(?:\.json)?)?$/;

/**
 * A run's working files, in a folder of its own under the system's temporary folder: what it
 * must remember of every file (checked sizes, duplicate detection, the journal's lookups, the
 * changed copies it sends) is kept there rather than in memory, so a run of millions of files
 * needs no more memory than one of thousands. The folder is held with a lock renewed while the
 * run lives (held-lock.ts), so a run in another container sharing $TMPDIR never takes it for
 * abandoned; removed when the run ends, and one left by a killed run by the next run.
 */
export class Scratch {
  private readonly open: Array<{ close(): void }> = [];
  private names = 0;

  private constructor(
    readonly dir: string,
    private readonly lock: HeldLock,
  ) {}

  /** Holds a new working folder, after removing those of runs known to be gone. */
  static async create(): Promise<Scratch> {
    const parent = runsFolder();
    await removeAbandoned(parent);
    const dir = join(parent, `run-${randomBytes(6).toString('hex')}`);
    // Held before it exists: a folder is never seen without its lock.
    const lock = await HeldLock.acquire(dir).catch((error: NodeJS.ErrnoException) => {
      throw new TableWriteError(join(dir, 'lock'), error.code ?? 'EIO');
    });
    try {
      writing(join(dir, 'folder'), () => mkdirSync(dir, { mode: 0o700 }));
    } catch (error) {
      await lock.release();
      throw error;
    }
    return new Scratch(dir, lock);
  }

  /** Calls `listener` if the folder's lock is lost: another run may then remove the folder. */
  whenLost(listener: (error: Error) => void): void {
    this.lock.whenLost(listener);
  }

  table(): DiskTable {
    return this.keep(DiskTable.create(this.file()));
  }

  strings(): StringLog {
    return this.keep(new StringLog(this.file()));
  }

  /** A folder of its own inside the working folder (for the changed copies a run sends). */
  folder(name: string): string {
    const path = join(this.dir, name);
    writing(path, () => mkdirSync(path, { recursive: true, mode: 0o700 }));
    return path;
  }

  async remove(): Promise<void> {
    for (const part of this.open.splice(0)) {
      try {
        part.close();
      } catch {
        // Its last pages could not be written (a full disk): they are thrown away anyway.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    await this.lock.release();
  }

  private file() {
    return join(this.dir, String(this.names++));
  }

  private keep<T extends { close(): void }>(part: T): T {
    this.open.push(part);
    return part;
  }
}

/**
 * The folder of this user's runs under $TMPDIR, `u21-media-<uid>`, private to the user: in a
 * $TMPDIR shared with other users, nobody else can plant a link or a file among a run's working
 * files. One that is not this user's own private folder is refused, naming it.
 */
function runsFolder(): string {
  const uid = process.getuid?.();
  const dir = join(tmpdir(), `u21-media-${uid ?? 'runs'}`);
  writing(join(dir, 'run'), () => {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  });
  const stats = lstatSync(dir);
  if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid) || (stats.mode & 0o022) !== 0) {
    throw new UsageError(`${dir} is not a private folder of this user's (a run keeps its working files there)`, 'remove it, or set TMPDIR to a folder of your own');
  }
  return dir;
}

/** Removes the working folders of runs that are gone (`kill -9`): each only once its lock can be taken. */
async function removeAbandoned(parent: string): Promise<void> {
  const ids = new Set<string>();
  for (const name of await readdir(parent).catch(() => [])) {
    const id = RUN_FOLDER.exec(name)?.[1];
    if (id !== undefined) ids.add(id);
  }
  for (const id of ids) {
    const dir = join(parent, `run-${id}`);
    try {
      const lock = await HeldLock.takeIfAbandoned(dir);
      if (!lock) continue;
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}.lock.json`, { force: true });
      await rm(`${dir}.takeover.lock`, { recursive: true, force: true }); // left by a run killed while it took a lock over
      await lock.release();
    } catch {
      // What cannot be removed now is tried again by the next run: it never stops this one.
    }
  }
}

/** Strings appended to a file, each read back by the number `add` gave it. */
export class StringLog {
  private readonly fd: number;
  private size = 0;
  private readonly length = Buffer.alloc(4);

  constructor(private readonly path: string) {
    this.fd = writing(path, () => openSync(path, 'w+'));
  }

  add(text: string): number {
    const bytes = Buffer.from(text);
    this.length.writeUInt32LE(bytes.length);
    const at = this.size;
    const written = writing(this.path, () => writeSync(this.fd, Buffer.concat([this.length, bytes]), 0, bytes.length + 4, at));
    if (written < bytes.length + 4) throw new TableWriteError(this.path, 'ENOSPC');
    this.size += bytes.length + 4;
    return at;
  }

  get(at: number): string {
    readSync(this.fd, this.length, 0, 4, at);
    const bytes = Buffer.alloc(this.length.readUInt32LE());
    readSync(this.fd, bytes, 0, bytes.length, at + 4);
    return bytes.toString();
  }

  close(): void {
    closeSync(this.fd);
  }
}
