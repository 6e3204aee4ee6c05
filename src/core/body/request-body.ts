import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { PlannedFile } from '../plan.js';

/** A request body built fresh for each attempt: a stream cannot be replayed. */
export interface RequestBody {
  headers: Record<string, string>;
  body: Readable;
  /** Exact byte length, sent as Content-Length. */
  length: number;
  /** sha256 (hex) of each file's bytes as sent; complete once the body has been read to its end. */
  digests(): string[];
  /** The error reading a file raised, if any: the file changed or vanished, which no retry mends. */
  fileError(): NodeJS.ErrnoException | undefined;
  /** Closes the body and every file it opened (after a failed attempt). */
  destroy(): void;
}

/** Both formats carry the same information; this is the multipart metadata part (custom_data flattened). */
export function flatMetadata(file: PlannedFile): Record<string, unknown> | undefined {
  if (file.mediaType === undefined && file.customData === undefined) return undefined;
  return { ...(file.mediaType !== undefined && { media_type: file.mediaType }), ...file.customData };
}

// Larger reads than the 64 KiB default: most scans then take one read, not two or three.
const READ_SIZE = 256 * 1024;

/**
 * A file's planned bytes as a stream, hashed on the way, so a file is read once per attempt.
 * Exactly `bytes` are read (as announced in Content-Length), which also spares the read that
 * would only find the end of the file.
 */
export function hashedFileStream(path: string, bytes: number, hash: Hash, onFileError: (error: Error) => void): Readable {
  const source = createReadStream(path, { highWaterMark: READ_SIZE, start: 0, end: bytes - 1 });
  // A plain listener rather than a Transform: one stream hop fewer per file. Attached while
  // the stream is paused, it sees every chunk exactly once, whoever consumes the stream.
  source.on('data', (chunk) => hash.update(chunk as Buffer));
  source.pause(); // the listener must not start the flow: the body's consumer does
  source.on('error', onFileError);
  return source;
}

export const newHash = () => createHash('sha256');
