import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { UsageError } from './errors.js';

/**
 * Opened without waiting: a pipe with no reader fails at once (ENXIO) instead of holding the run
 * (and its Ctrl-C) before anything is sent. Regular files and devices write as always.
 */
const NON_BLOCKING = constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK;

/** A journal or report must be a file the run can finish writing: a pipe or socket is refused, a device such as /dev/null is not. */
function refusePipe(stats: Stats, flag: string, path: string): void {
  if (!stats.isFIFO() && !stats.isSocket()) return;
  throw new UsageError(
    `${flag}: ${path} is a ${stats.isFIFO() ? 'named pipe' : 'socket'}, which would hold the run until something reads it`,
    'give a regular file (or /dev/null to keep none)',
  );
}

/** A pipe with no reader is refused at its opening. */
const noReader = (error: unknown, flag: string, path: string) =>
  (error as NodeJS.ErrnoException).code === 'ENXIO'
    ? new UsageError(
        `${flag}: ${path} is a named pipe with no reader, which would hold the run`,
        'give a regular file (or /dev/null to keep none)',
      )
    : error;

/** Opens a journal for appending, or throws UsageError for a pipe. */
export function openForAppend(path: string, flag: string): number {
  let fd: number;
  try {
    fd = openSync(path, NON_BLOCKING | constants.O_APPEND, 0o666);
  } catch (error) {
    throw noReader(error, flag, path);
  }
  try {
    refusePipe(fstatSync(fd), flag, path);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/** Opens a report to write it anew, or throws UsageError for a pipe. */
export async function openToWrite(path: string, flag: string): Promise<FileHandle> {
  const file = await open(path, NON_BLOCKING | constants.O_TRUNC, 0o666).catch((error: unknown) => {
    throw noReader(error, flag, path);
  });
  try {
    refusePipe(await file.stat(), flag, path);
  } catch (error) {
    await file.close();
    throw error;
  }
  return file;
}
