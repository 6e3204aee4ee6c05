import { hash } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from '../shared/errors.js';

/** One read brings a key's whole neighbourhood. */
const PAGE = 4096;
/** A 16-byte digest of the key and an 8-byte number. */
const SLOT = 24;
const SLOTS_PER_PAGE = Math.floor(PAGE / SLOT);
const FIRST_PAGES = 64;
/** Past this share of slots filled, the table doubles. */
const MAX_LOAD = 0.7;
/** Pages read at once when the table is read whole. */
const CHUNK_PAGES = 256;
/**
 * Pages kept in memory, the most recently used, written back when let go: 1 MiB a table. A
 * file's records come close together (sent, then stored), so their keys' pages are still here.
 */
const CACHED_PAGES = 256;

/** A table or its folder could not be written (a full disk): said naming the folder and the way out. */
export class TableWriteError extends UsageError {
  constructor(
    readonly path: string,
    readonly code: string,
  ) {
    super(
      `cannot write ${dirname(path)} (${code})`,
      'make room there: a run keeps about 100 bytes a file under $TMPDIR (set TMPDIR to a folder with room), and a journal its index beside it',
    );
  }
}

/** Runs a write, turning the file system's error into a TableWriteError. */
export function writing<T>(path: string, write: () => T): T {
  try {
    return write();
  } catch (error) {
    throw new TableWriteError(path, (error as NodeJS.ErrnoException).code ?? 'EIO');
  }
}

/** A page in memory, as bytes and as words (to compare digests four bytes at a time). */
interface Page {
  bytes: Buffer;
  words: Uint32Array;
  dirty: boolean;
}

/**
 * A map from string keys to numbers kept in a file, read and written with pread and pwrite
 * (never mapped, so it costs no memory however many keys it holds: the kernel's page cache
 * keeps what is hot). Keys are 128-bit digests, hashed into pages of 170 slots; a full page
 * spills into the next. Deletion is a value the caller reserves for it. Written to disk by
 * `flush` and `close`.
 */
export class DiskTable {
  /** Pages by number, least recently used first. */
  private readonly cached = new Map<number, Page>();
  /** The digest looked for, as words in the pages' (native) order. */
  private readonly sought = new Uint32Array(4);
  private readonly soughtBytes = new Uint8Array(this.sought.buffer);
  private count = 0;

  private constructor(
    private fd: number,
    readonly path: string,
    private pages: number,
  ) {}

  /** A new, empty table at `path` (replacing any file there). */
  static create(path: string, pages = FIRST_PAGES): DiskTable {
    const fd = writing(path, () => openSync(path, 'w+'));
    writing(path, () => ftruncateSync(fd, pages * PAGE));
    return new DiskTable(fd, path, pages);
  }

  /** The table a DiskTable left at `path`, or undefined when the file is not one. */
  static open(path: string): DiskTable | undefined {
    const fd = openSync(path, 'r+');
    const pages = fstatSync(fd).size / PAGE;
    if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0) {
      closeSync(fd);
      return undefined;
    }
    const table = new DiskTable(fd, path, pages);
    table.forEach(() => table.count++);
    return table;
  }

  get(key: string): number | undefined {
    const { page, word } = this.find(digestOf(key));
    return page.words[word] === 0 ? undefined : page.bytes.readDoubleLE(word * 4 + 16);
  }

  set(key: string, value: number): void {
    this.put(digestOf(key), value);
  }

  /** Whether a key was absent, setting it then. */
  add(key: string, value: number): boolean {
    return this.put(digestOf(key), value, true);
  }

  /** Writes every changed page to the file. */
  flush(): void {
    for (const [number, page] of this.cached) this.writeBack(number, page);
  }

  /** Flushes and closes; once closed, does nothing. */
  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Sets the digest's value (only if absent, when asked); whether it was absent. */
  private put(digest: Buffer, value: number, onlyIfAbsent = false): boolean {
    const { page, word } = this.find(digest);
    const added = page.words[word] === 0;
    if (!added && onlyIfAbsent) return false;
    digest.copy(page.bytes, word * 4, 0, 16);
    page.bytes.writeDoubleLE(value, word * 4 + 16);
    page.dirty = true;
    if (!added) return false;
    this.count++;
    if (this.count > MAX_LOAD * this.pages * SLOTS_PER_PAGE) this.grow();
    return true;
  }

  /** The page and word where the digest's slot starts, or the free slot it would take. */
  private find(digest: Buffer): { page: Page; word: number } {
    this.soughtBytes.set(digest.subarray(0, 16));
    const [w0, w1, w2, w3] = this.sought as unknown as [number, number, number, number];
    const mask = this.pages - 1;
    let number = w1 & mask;
    for (let probed = 0; probed < this.pages; probed++, number = (number + 1) & mask) {
      const page = this.pageAt(number);
      const { words } = page;
      for (let word = 0; word < (SLOTS_PER_PAGE * SLOT) / 4; word += SLOT / 4) {
        const first = words[word];
        // A digest never starts with a zero byte, so a zero word is a free slot: the key is not further on.
        if (first === 0 || (first === w0 && words[word + 1] === w1 && words[word + 2] === w2 && words[word + 3] === w3))
          return { page, word };
      }
    }
    throw new Error(`${this.path}: table full`); // not reached below MAX_LOAD
  }

  private pageAt(number: number): Page {
    let page = this.cached.get(number);
    if (page) {
      this.cached.delete(number); // to the most recent end
    } else {
      if (this.cached.size >= CACHED_PAGES) {
        const [oldest, old] = this.cached.entries().next().value!;
        this.writeBack(oldest, old);
        this.cached.delete(oldest);
        page = old;
      } else {
        const bytes = Buffer.alloc(PAGE);
        page = { bytes, words: new Uint32Array(bytes.buffer, bytes.byteOffset, PAGE / 4), dirty: false };
      }
      readSync(this.fd, page.bytes, 0, PAGE, number * PAGE);
    }
    this.cached.set(number, page);
    return page;
  }

  private writeBack(number: number, page: Page) {
    if (!page.dirty) return;
    const written = writing(this.path, () => writeSync(this.fd, page.bytes, 0, PAGE, number * PAGE));
    if (written < PAGE) throw new TableWriteError(this.path, 'ENOSPC');
    page.dirty = false;
  }

  /** Every slot in use, read from the file in large chunks. */
  private forEach(each: (digest: Buffer, value: number) => void) {
    this.flush();
    const chunk = Buffer.alloc(CHUNK_PAGES * PAGE);
    for (let first = 0; first < this.pages; first += CHUNK_PAGES) {
      const pages = Math.min(CHUNK_PAGES, this.pages - first);
      readSync(this.fd, chunk, 0, pages * PAGE, first * PAGE);
      for (let page = 0; page < pages; page++) {
        for (let offset = page * PAGE; offset < page * PAGE + SLOTS_PER_PAGE * SLOT; offset += SLOT) {
          if (chunk.readUInt32LE(offset) !== 0)
            each(chunk.subarray(offset, offset + 16), chunk.readDoubleLE(offset + 16));
        }
      }
    }
  }

  /** Doubles the table: a new file filled from this one's slots, then renamed over it. */
  private grow() {
    const bigger = DiskTable.create(`${this.path}.grow`, this.pages * 2);
    this.forEach((digest, value) => bigger.put(digest, value));
    bigger.flush();
    writing(this.path, () => renameSync(bigger.path, this.path));
    closeSync(this.fd);
    this.fd = bigger.fd;
    this.pages = bigger.pages;
    this.cached.clear();
  }
}

function digestOf(key: string): Buffer {
  const digest = hash('sha1', key, 'buffer');
  digest[0] ||= 1; // never zero: a zero first word marks a free slot
  return digest;
}
