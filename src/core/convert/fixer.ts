import { createHash } from 'node:crypto';
import { closeSync, readFile as readFileCallback, rm as rmCallback } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fileChanged, openChecked } from '../files/file-identity.js';
import { contentChanged, kindOfExtension } from '../files/sniff.js';
import { join } from 'node:path';
import type { Change, PlannedFile } from '../inputs/plan.js';
import { extensionOf } from '../files/file-types.js';
import { stripLocation } from './strip-location.js';
import { withDescriptor } from '../files/descriptors.js';
import { TableWriteError } from '../disk/disk-table.js';
import { readObject } from '../s3/store.js';

/**
 * Makes the changed copies a run sends (--convert, --fit, --strip-location) in a temporary
 * folder of its own, removed when the run ends; each copy goes as soon as its file has an
 * outcome. Originals are only read.
 */
export class Fixer {
  private made = 0;

  private constructor(
    private readonly dir: string,
    private readonly maxFileSize: number,
  ) {}

  /** Copies go in `dir`, a folder of the run's own (its working folder's `sent/`). */
  static create(maxFileSize: number, dir: string): Fixer {
    return new Fixer(dir, maxFileSize);
  }

  /**
   * The file as it will be sent: itself when nothing had to change (a photo without GPS), else
   * its changed copy, with `original` saying what it was and what was done. An object left as it
   * was is sent from a copy of the bytes read here (`localCopy`), not read from its bucket again. Throws
   * ReencodeError when it cannot be made into what Unit21 takes, a file system error (with
   * `path`) when the original cannot be read.
   */
  async fix(file: PlannedFile): Promise<PlannedFile> {
    const { fix } = file;
    if (!fix) return file;
    const input = await readChecked(file);
    const changes: Change[] = [];
    let output: Buffer = input;
    if (fix.convert || fix.fit) {
      const kind =
        file.detected !== undefined && file.detected !== 'unknown'
          ? file.detected
          : (kindOfExtension(extensionOf(file.absPath)) ?? 'unknown');
      const { toJpeg } = await import('./reencode.js');
      output = (await toJpeg(input, kind, { fit: fix.fit === true, maxFileSize: this.maxFileSize })).data;
      if (fix.convert) changes.push('converted');
      if (fix.fit) changes.push('fitted');
    }
    if (fix.stripLocation) {
      const stripped = stripLocation(output);
      if (stripped) {
        output = stripped;
        changes.push('location_stripped');
      }
    }
    if (changes.length === 0) return file.stored ? { ...file, localCopy: await this.copy(file, input) } : file;
    const copy = await this.copy(file, output);
    const sha256 = createHash('sha256').update(input).digest('hex');
    // The copy is the run's own: what the check saw and found of the original says nothing of it; an object's version stays with the original.
    const { identity: _identity, detected: _detected, stored, ...described } = file;
    return {
      ...described,
      absPath: copy,
      bytes: output.length,
      original: { absPath: file.absPath, bytes: input.length, sha256, changes, ...(stored && { stored }) },
    };
  }

  /** Writes `bytes` to a new copy for `file` in the run's folder, and says where. */
  private async copy(file: PlannedFile, bytes: Buffer): Promise<string> {
    const copy = join(this.dir, `${++this.made}-${file.name}`);
    // The copy goes in the run's working folder: one that cannot be written (a full $TMPDIR) stops the run, as its tables do.
    await writeFile(copy, bytes, { mode: 0o600 }).catch((error: NodeJS.ErrnoException) => {
      throw new TableWriteError(copy, error.code ?? 'EIO');
    });
    return copy;
  }

  /** Removes the temporary folder and every copy left in it. */
  close(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The original's bytes, from one open, only if it is the file the check saw and its content is
 * still what the check found (a file swapped for a pipe fails at once rather than hold the run).
 * An object is read whole, at the version the check saw (its ETag).
 */
async function readChecked(file: PlannedFile): Promise<Buffer> {
  if (file.stored) return unchanged(file, (await readObject({ ...file, stored: file.stored }, false)).bytes);
  const fd = await withDescriptor(() => openChecked(file.absPath, file.identity));
  let input: Buffer;
  try {
    input = await readWhole(fd);
  } catch (error) {
    throw Object.assign(error as Error, { path: file.absPath });
  } finally {
    closeSync(fd);
  }
  return unchanged(file, input);
}

/** The original's bytes, once its content is still what the check found. */
function unchanged(file: PlannedFile, input: Buffer): Buffer {
  const changed = contentChanged(file.detected, input);
  if (changed) throw fileChanged(file.absPath, changed);
  return input;
}

const readWhole = promisify(readFileCallback) as (fd: number) => Promise<Buffer>;

/** A copy whose file has its outcome is no longer needed; an unchanged file on disk is the original, left alone. */
export function releaseCopy(file: PlannedFile): void {
  const copy = file.original ? file.absPath : file.localCopy;
  if (copy) rmCallback(copy, { force: true }, () => {});
}
