import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import FormData from 'form-data';
import type { PlannedFile } from '../plan.js';
import { assemble, type Assembled, type Piece } from './reader-threads.js';
import { fitsWhole, flatMetadata, hashedFileStream, hexDigests, newHash, wholeBody, type RequestBody } from './request-body.js';

// An unguessable prefix per process and a count: a file cannot fake the boundary, as with a
// fresh random one per request, without asking for entropy on every request.
const BOUNDARY_PREFIX = `--------------------------${randomBytes(12).toString('hex')}`;
let bodies = 0;

/**
 * multipart/form-data: per file, a part with the file (name and Content-Type by
 * extension) and, under the same field name, a part with its metadata JSON. A small request
 * is read whole first; a larger one streams its files.
 */
export async function multipartBody(files: readonly PlannedFile[]): Promise<RequestBody> {
  const form = new FormData();
  form.setBoundary(`${BOUNDARY_PREFIX}${(bodies++).toString(36)}`);
  const whole = fitsWhole(files);
  let fileError: NodeJS.ErrnoException | undefined;
  // Read whole, each file gets an empty placeholder here and is read straight into the body later.
  const placeholders = whole ? files.map(() => Buffer.alloc(0)) : [];
  const hashes = whole ? [] : files.map(() => newHash());
  const sources = hashes.map((hash, index) => hashedFileStream(files[index]!.absPath, files[index]!.bytes, hash, (error) => (fileError ??= error)));
  files.forEach((file, index) => {
    const field = `file_${index + 1}`;
    form.append(field, placeholders[index] ?? sources[index]!, { filename: file.name, contentType: file.contentType, knownLength: file.bytes });
    const metadata = flatMetadata(file);
    if (metadata) form.append(field, JSON.stringify(metadata));
  });
  if (whole) return wholeBody(form.getHeaders(), await readAround(form, placeholders, files));

  const length = form.getLengthSync();
  // form-data is an old-style stream; a PassThrough gives undici a proper Readable,
  // and a read error must reach it, or the request would wait forever.
  const body = new PassThrough();
  form.on('error', (error) => body.destroy(error));
  // The form starts reading at once, before undici takes the body (it waits for a start slot):
  // an error until then is kept for the request, in fileError and the destroyed stream undici
  // rejects with, not thrown.
  body.on('error', () => {});
  form.pipe(body);
  return {
    headers: { ...form.getHeaders(), 'content-length': String(length) },
    body,
    length,
    digests: hexDigests(hashes),
    fileError: () => fileError,
    // form-data opens every file up front; those it had not reached yet must be closed too.
    destroy: () => {
      body.destroy();
      for (const source of sources) source.destroy();
    },
  };
}

/**
 * The form's framing with each file in the gap its placeholder left, read whole by a reader
 * thread. Rejects with the error (with its path) of a file that can no longer be read as checked.
 */
async function readAround(form: FormData, placeholders: readonly Buffer[], files: readonly PlannedFile[]): Promise<Assembled> {
  const length = form.getLengthSync(); // before the parts are taken out
  const parts: (Buffer | string)[] = [];
  form.on('data', (part: Buffer | string) => parts.push(part));
  const ended = once(form, 'end');
  form.resume();
  await ended;
  let framed = 0;
  const pieces: Piece[] = parts.map((part) => {
    const index = typeof part === 'string' ? -1 : placeholders.indexOf(part);
    const file = files[index];
    framed += file ? file.bytes : Buffer.byteLength(part);
    return file ? { path: file.absPath, bytes: file.bytes } : part;
  });
  // form-data hands on each value as given; should that ever change, files would go out empty.
  if (pieces.filter((piece) => typeof piece === 'object' && 'path' in piece).length !== files.length || framed !== length) {
    throw new Error('form-data did not frame the files as expected');
  }
  return assemble(pieces);
}
