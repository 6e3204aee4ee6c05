import { createHash } from 'node:crypto';
import { closeSync, readSync } from 'node:fs';
import { fileChanged, openCheckedSync, SIZE_CHANGED } from '../file-identity.js';
import { contentChanged } from '../sniff.js';
import { base64Length, writeBase64 } from './base64.js';
import type { CheckedFile } from './file-stream.js';

/** A whole body in order: framing as it is, and files read in whole (JSON: as base64). */
export type Piece = string | (CheckedFile & { base64?: boolean });

export interface Assembled {
  body: Buffer;
  /** sha256 (hex) of each file's bytes, in order. */
  digests: string[];
}

/**
 * Builds whole bodies with plain blocking reads: run by the reader threads, never on the event
 * loop. Keeps the scratch memory a file read for base64 waits in between bodies.
 */
export class Assembler {
  private scratch = Buffer.alloc(0);

  /**
   * The body the pieces make, each file read at its planned size. `spare` is memory of earlier
   * bodies to read into again; the one used is taken out of it. A file that can no longer be
   * read so throws its error with its `path`.
   */
  build(pieces: readonly Piece[], spare: ArrayBuffer[]): Assembled {
    const lengths = pieces.map((piece) => (typeof piece === 'string' ? Buffer.byteLength(piece) : piece.base64 ? base64Length(piece.bytes) : piece.bytes));
    const length = lengths.reduce((sum, n) => sum + n, 0);
    // Memory of its own, not a slice of a shared pool: it is handed over to the event loop whole.
    // Given-back memory is used only if it fits closely, so a small body never holds a large one.
    const fitting = spare.filter((memory) => memory.byteLength > length && memory.byteLength <= 2 * length + 65_536);
    const reused = fitting.reduce<ArrayBuffer | undefined>((best, memory) => (best && best.byteLength <= memory.byteLength ? best : memory), undefined);
    if (reused) spare.splice(spare.indexOf(reused), 1);
    const body = reused ? Buffer.from(reused, 0, length + 1) : Buffer.allocUnsafeSlow(length + 1);
    const digests: string[] = [];
    let at = 0;
    for (const [index, piece] of pieces.entries()) {
      if (typeof piece === 'string') body.write(piece, at, 'utf8');
      else {
        // Read straight into place; the framing after it is written over the extra byte.
        const bytes = piece.base64 ? this.readPlanned(piece, this.scratchFor(piece.bytes), 0) : this.readPlanned(piece, body, at);
        digests.push(createHash('sha256').update(bytes).digest('hex'));
        if (piece.base64) writeBase64(bytes, body, at);
      }
      at += lengths[index]!;
    }
    return { body: body.subarray(0, length), digests };
  }

  private scratchFor(bytes: number): Buffer {
    if (this.scratch.length < bytes + 1) this.scratch = Buffer.allocUnsafeSlow(bytes + 1);
    return this.scratch;
  }

  /**
   * A file's planned bytes into `target` at `at`, which has room for one byte more: a read short
   * of that byte, with the planned bytes in, has found the end, so no read just to see it. The
   * file is opened once and read only if it is the one checked, and its bytes are kept only if
   * they are still what the check found.
   */
  private readPlanned(file: CheckedFile, target: Buffer, at: number): Buffer {
    const { path, bytes } = file;
    try {
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
    } catch (error) {
      // The file system's errors, and a changed file, are the file's; anything else is a bug.
      const { syscall, code } = error as NodeJS.ErrnoException;
      throw syscall !== undefined || code === 'file_changed' ? Object.assign(error as Error, { path }) : error;
    }
  }
}
