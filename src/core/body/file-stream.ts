import type { Hash } from 'node:crypto';
import { close, read } from 'node:fs';
import { Readable } from 'node:stream';
import { fileChanged, openChecked, SIZE_CHANGED, type FileIdentity } from '../files/file-identity.js';
import { endChanged, hasEndMarker, headChanged, HEAD_BYTES, TAIL_BYTES, type Detected } from '../files/sniff.js';
import type { StoredObject } from '../s3/store.js';

/** A checked file as a body reads it: where, how many bytes, what the check saw of it and what its content was found to be. */
export interface CheckedFile {
  path: string;
  bytes: number;
  identity?: FileIdentity;
  detected?: Detected;
  /** An object in a bucket: read from there, never handed to a reader thread. */
  stored?: StoredObject;
}

/**
 * Exactly a file's planned bytes, hashed as they are read, so a file is read once per attempt.
 * The file is opened once, and read only if it is the one the check saw (files/file-identity.ts);
 * its first bytes go out only if they are still what the check found. Each read asks for one
 * byte more than is left: the last read then also tells whether the file grew since the
 * check, without a read that only finds the end. A file that grew, shrank or changed fails
 * with file_changed rather than being sent.
 */
export class PlannedFileStream extends Readable {
  private fd: number | undefined;
  private position = 0;
  private left: number;
  /** Its last TAIL_BYTES so far, to look for the end marker the check found (kept only for a kind that has one). */
  private tail = Buffer.alloc(0);
  private readonly endMarked: boolean;
  /** Set when the stream is destroyed during a read: the file is closed once that read is back, never under it. */
  private closeAfterRead: (() => void) | undefined;
  private readInFlight = false;

  constructor(
    private readonly file: CheckedFile,
    private readonly hash: Hash,
    private readonly readSize: number,
  ) {
    super({ highWaterMark: readSize });
    this.left = file.bytes;
    this.endMarked = file.detected !== undefined && hasEndMarker(file.detected);
  }

  override _construct(callback: (error?: Error | null) => void): void {
    openChecked(this.file.path, this.file.identity).then(
      (fd) => {
        this.fd = fd;
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _read(): void {
    // The first read holds the head the check looked at.
    const wanted = Math.min(Math.max(this.readSize, this.position === 0 ? HEAD_BYTES : 0), this.left + 1);
    const buffer = Buffer.allocUnsafeSlow(wanted);
    this.readInFlight = true;
    read(this.fd!, buffer, 0, wanted, this.position, (error, n) => {
      this.readInFlight = false;
      if (this.closeAfterRead) return this.closeAfterRead();
      const { path, detected } = this.file;
      if (error) return this.destroy(Object.assign(error, { path })); // names the file, as open's errors do
      if (n > this.left || (n === 0 && this.left > 0)) return this.destroy(fileChanged(path, SIZE_CHANGED));
      if (n === 0) return this.push(null);
      const chunk = n < wanted ? buffer.subarray(0, n) : buffer;
      // Nothing goes out unless it is still what the check found: its head before its first byte, its end before its last.
      const headWhy = this.position === 0 ? headChanged(detected, chunk.subarray(0, HEAD_BYTES)) : undefined;
      if (headWhy) return this.destroy(fileChanged(path, headWhy));
      if (this.endMarked)
        this.tail = Buffer.concat([this.tail, chunk.subarray(Math.max(0, n - TAIL_BYTES))]).subarray(-TAIL_BYTES);
      const endWhy = n === this.left ? endChanged(detected, this.tail) : undefined;
      if (endWhy) return this.destroy(fileChanged(path, endWhy));
      this.position += n;
      this.left -= n;
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
