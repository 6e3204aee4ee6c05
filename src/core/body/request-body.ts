import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
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

/** A file's bytes as a stream that hashes them on the way, so a file is read once per attempt. */
// Larger reads than the 64 KiB default: most scans then take one read, not two or three.
const READ_SIZE = 256 * 1024;

export function hashedFileStream(path: string, hash: Hash, onFileError: (error: Error) => void): Readable {
  const source = createReadStream(path, { highWaterMark: READ_SIZE });
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  source.on('error', (error) => {
    onFileError(error);
    hasher.destroy(error);
  });
  hasher.on('close', () => source.destroy()); // a body cut short must not keep the file open
  return source.pipe(hasher);
}

export const newHash = () => createHash('sha256');
