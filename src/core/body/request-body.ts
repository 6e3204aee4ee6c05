import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { WHOLE_AT_MOST } from '../files/file-types.js';
import type { PlannedFile } from '../inputs/plan.js';
import { PlannedFileStream, type CheckedFile } from './file-stream.js';
import type { BodyReader, WholeFile } from './reader-threads.js';
import { objectStream } from '../s3/store.js';

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
export function hashedFileStream(
  file: PlannedFile,
  hash: Hash,
  onFileError: (error: Error) => void,
  readSize = READ_SIZE,
): Readable {
  const checked = checkedFile(file);
  const stream = checked.stored
    ? objectStream({ ...file, stored: checked.stored }, hash)
    : new PlannedFileStream(checked, hash, readSize);
  return stream.on('error', onFileError);
}

/** Where a body reads a file's bytes: the run's copy of an object already read whole, else the file itself. */
export const readPath = (file: Pick<PlannedFile, 'absPath' | 'localCopy'>) => file.localCopy ?? file.absPath;

/** What a body needs to read a file: where, how many bytes, and what the check found of it (nothing of the run's own copy). */
export const checkedFile = (file: PlannedFile): CheckedFile =>
  file.localCopy
    ? { path: file.localCopy, bytes: file.bytes }
    : {
        path: file.absPath,
        bytes: file.bytes,
        ...(file.identity && { identity: file.identity }),
        ...(file.detected !== undefined && { detected: file.detected }),
        ...(file.stored && { stored: file.stored }),
      };

export const newHash = () => createHash('sha256');

/** The hex digests of the hashes so far, for `RequestBody.digests`. */
export const hexDigests = (hashes: readonly Hash[]) => () => hashes.map((h) => h.copy().digest('hex'));

/** Whether a file, or a request, is small enough to be read whole: Unit21's largest files (5 MB) are. */
export const fitsWhole = (files: readonly PlannedFile[]) =>
  files.reduce((sum, file) => sum + file.bytes, 0) <= WHOLE_AT_MOST;

/** Files of a request read whole ahead of its turn (its first attempt), in its format; one not read ahead is read when the body is built. */
export type FileReads = ReadonlyArray<Promise<WholeFile> | undefined>;

/** Builds a request's body from its files: the multipart or the JSON format. */
export type BodyBuilder = (
  files: readonly PlannedFile[],
  reader: BodyReader,
  reads?: FileReads,
) => Promise<RequestBody>;

/** A request's files read whole, as they go out (base64 for JSON): those read ahead as they are, the others now. */
export const wholeFiles = (files: readonly PlannedFile[], reader: BodyReader, base64: boolean, reads: FileReads = []) =>
  files.map((file, index) => reads[index] ?? reader.read(checkedFile(file), base64));

/**
 * A body whole in memory: the framing and the files' bytes in one buffer. A lone file's framing
 * is written into the room its memory has around it (FRAMING_ROOM), so its body is made without
 * a copy; the files of a batch are copied into a new buffer, and their memory goes back to the
 * reader to read the next files into. A body the server read in full goes back too.
 */
export async function wholeBody(
  headers: Record<string, string>,
  pieces: ReadonlyArray<string | Promise<WholeFile>>,
  reader: BodyReader,
): Promise<RequestBody> {
  const joined = await Promise.all(pieces.map((piece) => Promise.resolve(piece)));
  const files = joined.filter((piece): piece is WholeFile => typeof piece !== 'string');
  const body = inPlace(joined) ?? copied(joined, reader);
  const digests = files.map((file) => file.sha256);
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

/** [head, file, tail] in the file's own memory, when the framing fits the room around it. */
function inPlace(pieces: ReadonlyArray<string | WholeFile>): Buffer | undefined {
  const [head, file, tail] = pieces;
  if (pieces.length !== 3 || typeof head !== 'string' || typeof file !== 'object' || typeof tail !== 'string')
    return undefined;
  const { bytes } = file;
  const [before, after] = [Buffer.byteLength(head), Buffer.byteLength(tail)];
  const start = bytes.byteOffset - before;
  const end = bytes.byteOffset + bytes.length + after;
  if (start < 0 || end > bytes.buffer.byteLength) return undefined;
  const body = Buffer.from(bytes.buffer, start, end - start);
  body.write(head, 0, 'utf8');
  body.write(tail, before + bytes.length, 'utf8');
  return body;
}

function copied(pieces: ReadonlyArray<string | WholeFile>, reader: BodyReader): Buffer {
  const length = pieces.reduce(
    (sum, piece) => sum + (typeof piece === 'string' ? Buffer.byteLength(piece) : piece.bytes.length),
    0,
  );
  const body = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const piece of pieces) {
    if (typeof piece === 'string') at += body.write(piece, at, 'utf8');
    else {
      at += piece.bytes.copy(body, at);
      reader.recycle(piece.bytes);
    }
  }
  return body;
}
