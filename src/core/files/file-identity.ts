import { createHash } from 'node:crypto';
import {
  close,
  closeSync,
  constants,
  fstat,
  fstatSync,
  open,
  openSync,
  realpath,
  realpathSync,
  type Stats,
} from 'node:fs';
import { promisify } from 'node:util';

/**
 * What the check saw of a file. Every read after it (duplicate detection, the body, a changed
 * copy) opens the file once, without following a link or waiting on a pipe, and reads it only
 * if the file open is still this one: the same device and inode, size, and modification and
 * change times (a change time cannot be set back). A file swapped after the check (for a link
 * to another file, a device or a pipe, or written over in place) fails with file_changed.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

export const identityOf = (stats: Stats): FileIdentity => ({
  dev: stats.dev,
  ino: stats.ino,
  size: stats.size,
  mtimeMs: stats.mtimeMs,
  ctimeMs: stats.ctimeMs,
});

/** An identity no file has: a file the second look of a large run found changed since its check fails when read. */
export const CHANGED_SINCE_CHECK: FileIdentity = Object.freeze({
  dev: -1,
  ino: -1,
  size: -1,
  mtimeMs: Number.NaN,
  ctimeMs: Number.NaN,
});

/** An identity as one number (52 bits of its sha1), for the tables of a large run. */
export const identityNumber = (identity: FileIdentity): number =>
  Number.parseInt(createHash('sha1').update(JSON.stringify(identity)).digest('hex').slice(0, 13), 16);

/**
 * Opening for reading without waiting: a file swapped for a pipe fails at its read instead of
 * holding a thread (and the run) until something writes to it. Regular files read as always.
 */
export const NON_BLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK;
/** The same, without following a link. */
const NO_FOLLOW = NON_BLOCKING_READ | constants.O_NOFOLLOW;

const NOT_SENT = 'so it was not sent; run again once it is as it should be';

/** A file read to a size other than the one checked: sending it would store a cut or padded copy. */
export const SIZE_CHANGED = 'its size changed after the check, so it was not sent; run again once it is complete';

export function fileChanged(path: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code: 'file_changed', path });
}

/** How the file open differs from the one checked, or undefined when it is that file. */
function differs(stats: Stats, identity: FileIdentity | undefined): string | undefined {
  if (!stats.isFile())
    return `it is no longer a regular file (a link, pipe or device is in its place since the check), ${NOT_SENT}`;
  if (!identity) return undefined;
  if (stats.dev !== identity.dev || stats.ino !== identity.ino)
    return `another file is in its place since the check, ${NOT_SENT}`;
  if (stats.size !== identity.size) return SIZE_CHANGED;
  if (stats.mtimeMs !== identity.mtimeMs || stats.ctimeMs !== identity.ctimeMs)
    return `it was written to or changed after the check, ${NOT_SENT}`;
  return undefined;
}

/**
 * Opens a checked file for reading: a link (one the check judged, or a file named that is a
 * link) is resolved and its target opened without following further; the descriptor is kept
 * only if it is the file the check saw. Without an identity (a changed copy of the run's own),
 * it must still be a regular file.
 */
export function openCheckedSync(path: string, identity?: FileIdentity): number {
  let fd: number;
  try {
    fd = openLinkResolvedSync(path);
  } catch (error) {
    throw namingFile(error, path);
  }
  let changed: string | undefined;
  try {
    changed = differs(fstatSync(fd), identity);
  } catch (error) {
    closeSync(fd);
    throw namingFile(error, path);
  }
  if (changed) {
    closeSync(fd);
    throw fileChanged(path, changed);
  }
  return fd;
}

/**
 * The error of a checked open names the file asked for, also when it came from a link's target:
 * the run matches a failure to its file by this path.
 */
const namingFile = (error: unknown, path: string) => Object.assign(error as Error, { path });

/** The file itself, or the target a link resolves to, opened without following any link further. */
function openLinkResolvedSync(path: string): number {
  try {
    return openSync(path, NO_FOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOOP') throw error;
    return openSync(realpathSync(path), NO_FOLLOW);
  }
}

const openFile = promisify(open);
const statFile = promisify(fstat);
const closeFile = promisify(close);
const realPath = promisify(realpath);

async function openLinkResolved(path: string): Promise<number> {
  try {
    return await openFile(path, NO_FOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOOP') throw error;
    return await openFile(await realPath(path), NO_FOLLOW);
  }
}

/** openCheckedSync, off the event loop's thread. */
export async function openChecked(path: string, identity?: FileIdentity): Promise<number> {
  let fd: number;
  try {
    fd = await openLinkResolved(path);
  } catch (error) {
    throw namingFile(error, path);
  }
  let changed: string | undefined;
  try {
    changed = differs(await statFile(fd), identity);
  } catch (error) {
    await closeFile(fd);
    throw namingFile(error, path);
  }
  if (changed) {
    await closeFile(fd);
    throw fileChanged(path, changed);
  }
  return fd;
}
