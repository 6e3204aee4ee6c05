import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskTable, TableWriteError, writing } from './disk-table.js';

/**
 * A run's working files, in a folder of its own under the system's temporary folder: what it
 * must remember of every file (checked sizes, duplicate detection, the journal's lookups)
 * is kept there rather than in memory, so a run of millions of files needs no more memory
 * than one of thousands. Removed when the run ends; one left by a killed run is removed by
 * the next.
 */
export class Scratch {
  private readonly dir = writing(join(tmpdir(), 'u21-media-'), () => mkdtempSync(join(removeAbandoned(), `u21-media-${process.pid}-`)));
  private readonly open: Array<{ close(): void }> = [];
  private names = 0;

  table(): DiskTable {
    return this.keep(DiskTable.create(this.file()));
  }

  strings(): StringLog {
    return this.keep(new StringLog(this.file()));
  }

  remove(): void {
    for (const part of this.open.splice(0)) {
      try {
        part.close();
      } catch {
        // Its last pages could not be written (a full disk): they are thrown away anyway.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private file() {
    return join(this.dir, String(this.names++));
  }

  private keep<T extends { close(): void }>(part: T): T {
    this.open.push(part);
    return part;
  }
}

/** Removes the scratch folders of runs whose process is gone (`kill -9`); gives the folder they are in. */
function removeAbandoned(): string {
  const parent = tmpdir();
  for (const name of readdirSync(parent)) {
    const pid = /^u21-media-(\d+)-/.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    try {
      rmSync(join(parent, name), { recursive: true, force: true });
    } catch {
      // Another user's: theirs to remove.
    }
  }
  return parent;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, and someone else's.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
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
