import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskTable, TableWriteError, writing } from './disk-table.js';
import { HeldLock } from './held-lock.js';
import { UsageError } from '../shared/errors.js';

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
    throw new UsageError(
      `${dir} is not a private folder of this user's (a run keeps its working files there)`,
      'remove it, or set TMPDIR to a folder of your own',
    );
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

/** Appended strings wait in memory up to this many bytes, then go to the file in one write. */
const PENDING_AT_MOST = 64 * 1024;

/**
 * Strings appended to a file, each read back by the number `add` gave it. Appends are written
 * 64 KiB at a time: a write a string cost more than the rest of a small file's duplicate check.
 */
export class StringLog {
  private readonly fd: number;
  /** Bytes in the file. */
  private written = 0;
  /** Bytes appended after those, not yet written. */
  private pending = Buffer.allocUnsafe(PENDING_AT_MOST);
  private pendingBytes = 0;

  constructor(private readonly path: string) {
    this.fd = writing(path, () => openSync(path, 'w+'));
  }

  add(text: string): number {
    const bytes = Buffer.from(text);
    if (this.pendingBytes + 4 + bytes.length > PENDING_AT_MOST) this.flush();
    const at = this.written + this.pendingBytes;
    // A string longer than the buffer goes alone.
    if (4 + bytes.length > PENDING_AT_MOST) this.pending = Buffer.allocUnsafe(4 + bytes.length);
    this.pending.writeUInt32LE(bytes.length, this.pendingBytes);
    bytes.copy(this.pending, this.pendingBytes + 4);
    this.pendingBytes += 4 + bytes.length;
    return at;
  }

  get(at: number): string {
    if (at >= this.written) {
      const from = at - this.written;
      return this.pending.toString('utf8', from + 4, from + 4 + this.pending.readUInt32LE(from));
    }
    const length = Buffer.alloc(4);
    readSync(this.fd, length, 0, 4, at);
    const bytes = Buffer.alloc(length.readUInt32LE());
    readSync(this.fd, bytes, 0, bytes.length, at + 4);
    return bytes.toString();
  }

  close(): void {
    closeSync(this.fd);
  }

  private flush() {
    if (this.pendingBytes === 0) return;
    const written = writing(this.path, () => writeSync(this.fd, this.pending, 0, this.pendingBytes, this.written));
    if (written < this.pendingBytes) throw new TableWriteError(this.path, 'ENOSPC');
    this.written += this.pendingBytes;
    this.pendingBytes = 0;
    if (this.pending.length > PENDING_AT_MOST) this.pending = Buffer.allocUnsafe(PENDING_AT_MOST);
  }
}
