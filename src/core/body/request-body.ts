import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { WHOLE_AT_MOST } from '../file-types.js';
import type { PlannedFile } from '../plan.js';
import { PlannedFileStream, type CheckedFile } from './file-stream.js';
import type { Assembled, BodyReader } from './reader-threads.js';

/** A request body built fresh for each attempt: a stream cannot be replayed. */
export interface RequestBody {
  headers: Record<string, string>;
  /** A small request whole in memory; a larger one as a stream. */
  body: Buffer | Readable;
  /** Exact byte length, sent as Content-Length. */
  length: number;
  /** sha256 (hex) of each file's bytes as sent; complete once the body has been read to its end. */
  digests(): string[];
  /** The same, known before sending: a body read whole. Undefined for a streamed one. */
  knownDigests?: readonly string[];
  /** The error reading a file raised, if any: the file changed or vanished, which no retry mends. */
  fileError(): NodeJS.ErrnoException | undefined;
  /**
   * Closes the body and every file it opened, after each attempt. `fullyRead` when the server
   * took all of it (it answered 2xx): a body in memory may then be used again.
   */
  destroy(fullyRead?: boolean): void;
}

/** Both formats carry the same information; this is the multipart metadata part (custom_data flattened). */
export function flatMetadata(file: PlannedFile): Record<string, unknown> | undefined {
  if (file.mediaType === undefined && file.customData === undefined) return undefined;
  return { ...(file.mediaType !== undefined && { media_type: file.mediaType }), ...file.customData };
}

// Larger reads than the 64 KiB default: most scans then take one read, not two or three.
const READ_SIZE = 256 * 1024;

/** A file's planned bytes, hashed as read; a read error (or a changed file) goes to `onFileError`. */
export function hashedFileStream(file: PlannedFile, hash: Hash, onFileError: (error: Error) => void, readSize = READ_SIZE): Readable {
  return new PlannedFileStream(checkedFile(file), hash, readSize).on('error', onFileError);
}

/** What a body needs to read a file: where, how many bytes, and what the check found of it. */
export const checkedFile = (file: PlannedFile): CheckedFile => ({ path: file.absPath, bytes: file.bytes, ...(file.identity && { identity: file.identity }), ...(file.detected !== undefined && { detected: file.detected }) });

export const newHash = () => createHash('sha256');

/** The hex digests of the hashes so far, for `RequestBody.digests`. */
export const hexDigests = (hashes: readonly Hash[]) => () => hashes.map((h) => h.copy().digest('hex'));

/** Whether a request is small enough to be read whole. */
export const fitsWhole = (files: readonly PlannedFile[]) => files.reduce((sum, file) => sum + file.bytes, 0) <= WHOLE_AT_MOST;

/** Builds a request's body from its files: the multipart or the JSON format. */
export type BodyBuilder = (files: readonly PlannedFile[], reader: BodyReader) => Promise<RequestBody>;

/** A body already whole in memory: its files are read and closed. Its memory goes back to the reader once the server read it all. */
export function wholeBody(headers: Record<string, string>, { body, digests }: Assembled, reader: BodyReader): RequestBody {
  return {
    headers: { ...headers, 'content-length': String(body.length) },
    body,
    length: body.length,
    digests: () => digests,
    knownDigests: digests,
    fileError: () => undefined,
    destroy: (fullyRead) => {
      if (fullyRead) reader.recycle(body);
    },
  };
}
