import { createHash } from 'node:crypto';
import { closeSync, readSync } from 'node:fs';
import { fileChanged, openCheckedSync, SIZE_CHANGED, type FileIdentity } from '../files/file-identity.js';
import { contentChanged } from '../files/sniff.js';
import { base64Length, writeBase64 } from '../files/base64.js';
import type { CheckedFile } from './file-stream.js';
import { FRAMING_ROOM, type WholeFile } from '../files/framing.js';

/** Reads for a digest alone go a mebibyte at a time: a large file is never held whole. */
const DIGEST_READ = 1024 * 1024;

/**
 * Reads files whole with plain blocking reads: run by the reader threads, never on the event
 * loop. Each file is opened once, read only if it is the one the check saw, and its bytes are
 * hashed and kept only if they are still what the check found: the bytes hashed are the bytes
 * sent. Keeps the scratch memory a file read for base64 waits in between files.
 */
export class FileReader {
  private scratch = Buffer.alloc(0);

  /**
   * The file at its planned size, as it goes out. `spare` is memory of earlier files to read into
   * again; the one used is taken out of it. A file that can no longer be read so throws its error
   * with its `path`.
   */
  read(file: CheckedFile, base64: boolean, spare: ArrayBuffer[]): WholeFile {
    const length = base64 ? base64Length(file.bytes) : file.bytes;
    // Memory of its own, not a slice of a shared pool: it is handed over to the event loop whole.
    // The extra byte a plain read asks for lands in the room after.
    const out = memoryFor(FRAMING_ROOM + length + FRAMING_ROOM, spare);
    const bytes = base64
      ? this.readPlanned(file, this.scratchFor(file.bytes), 0)
      : this.readPlanned(file, out, FRAMING_ROOM);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (base64) writeBase64(bytes, out, FRAMING_ROOM);
    return { bytes: out.subarray(FRAMING_ROOM, FRAMING_ROOM + length), sha256 };
  }

  /** sha256 of a file, to compare contents: opened once, read only if it is the one the check saw. */
  digest(path: string, identity: FileIdentity | undefined): string {
    return asFileError(path, () => {
      const hash = createHash('sha256');
      const chunk = this.scratchFor(DIGEST_READ);
      const fd = openCheckedSync(path, identity);
      try {
        for (let n = readSync(fd, chunk, 0, DIGEST_READ, null); n > 0; n = readSync(fd, chunk, 0, DIGEST_READ, null))
          hash.update(chunk.subarray(0, n));
      } finally {
        closeSync(fd);
      }
      return hash.digest('hex');
    });
  }

  private scratchFor(bytes: number): Buffer {
    if (this.scratch.length < bytes + 1) this.scratch = Buffer.allocUnsafeSlow(bytes + 1);
    return this.scratch;
  }

  /**
   * A file's planned bytes into `target` at `at`, which has room for one byte more: a read short
   * of that byte, with the planned bytes in, has found the end, so no read just to see it.
   */
  private readPlanned(file: CheckedFile, target: Buffer, at: number): Buffer {
    const { path, bytes } = file;
    return asFileError(path, () => {
      const fd = openCheckedSync(path, file.identity);
      try {
        let filled = 0;
        for (;;) {
          const n = readSync(fd, target, at + filled, bytes + 1 - filled, filled);
          filled += n;
          if (n === 0 || filled >= bytes) break;
        }
        if (filled !== bytes) throw fileChanged(path, SIZE_CHANGED);
        const read = target.subarray(at, at + bytes);
        const changed = contentChanged(file.detected, read);
        if (changed) throw fileChanged(path, changed);
        return read;
      } finally {
        closeSync(fd);
      }
    });
  }
}

/**
 * Given-back memory if one fits closely, so a small file never holds a large one's; else new.
 * Fresh memory costs its first touch of every page, more than reading the file into it.
 */
function memoryFor(length: number, spare: ArrayBuffer[]): Buffer {
  const fitting = spare.filter((memory) => memory.byteLength >= length && memory.byteLength <= 2 * length + 65_536);
  const reused = fitting.reduce<ArrayBuffer | undefined>(
    (best, memory) => (best && best.byteLength <= memory.byteLength ? best : memory),
    undefined,
  );
  if (!reused) return Buffer.allocUnsafeSlow(length);
  spare.splice(spare.indexOf(reused), 1);
  return Buffer.from(reused, 0, length);
}

/** The file system's errors, and a changed file, are the file's (they carry its path); anything else is a bug. */
function asFileError<T>(path: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    const { syscall, code } = error as NodeJS.ErrnoException;
    throw syscall !== undefined || code === 'file_changed' ? Object.assign(error as Error, { path }) : error;
  }
}
