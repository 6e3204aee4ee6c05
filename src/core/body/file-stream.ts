import type { Hash } from 'node:crypto';
import { close, constants, open, read } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * Opening for reading without waiting: a file swapped for a pipe since the check fails at its
 * read instead of holding a thread (and the run) until something writes to it. Regular files
 * read as always.
 */
export const NON_BLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK;

export const FILE_CHANGED = 'its size changed after the check, so it was not sent; run again once it is complete';

/** Raised when a file's size is no longer the one checked: sending it would store a cut or padded copy. */
function fileChanged(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(FILE_CHANGED), { code: 'file_changed', path });
}

/**
 * Exactly a file's planned bytes, hashed as they are read, so a file is read once per attempt.
 * Each read asks for one byte more than is left: the last read then also tells whether the
 * file grew since the check, without a read that only finds the end. A file that grew or
 * shrank fails with file_changed rather than being sent cut short.
 */
export class PlannedFileStream extends Readable {
  private fd: number | undefined;
  private position = 0;
  /** Set when the stream is destroyed during a read: the file is closed once that read is back, never under it. */
  private closeAfterRead: (() => void) | undefined;
  private readInFlight = false;

  constructor(
    private readonly path: string,
    private left: number,
    private readonly hash: Hash,
    private readonly readSize: number,
  ) {
    super({ highWaterMark: readSize });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, NON_BLOCKING_READ, (error, fd) => {
      this.fd = fd;
      callback(error);
    });
  }

  override _read(): void {
    const wanted = Math.min(this.readSize, this.left + 1);
    const buffer = Buffer.allocUnsafeSlow(wanted);
    this.readInFlight = true;
    read(this.fd!, buffer, 0, wanted, this.position, (error, n) => {
      this.readInFlight = false;
      if (this.closeAfterRead) return this.closeAfterRead();
      if (error) return this.destroy(Object.assign(error, { path: this.path })); // names the file, as open's errors do
      if (n > this.left || (n === 0 && this.left > 0)) return this.destroy(fileChanged(this.path));
      if (n === 0) return this.push(null);
      this.position += n;
      this.left -= n;
      const chunk = n < wanted ? buffer.subarray(0, n) : buffer;
      this.hash.update(chunk);
      this.push(chunk);
      // The extra byte was asked for and not there: the file ends exactly where planned
      // (unless a reader of that chunk destroyed the stream).
      if (this.left === 0 && n < wanted && !this.destroyed) this.push(null);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return callback(error);
    const closeFile = () => close(fd, () => callback(error));
    if (this.readInFlight) this.closeAfterRead = closeFile;
    else closeFile();
  }
}
