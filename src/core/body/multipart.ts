import { randomBytes, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import FormData from 'form-data';
import type { PlannedFile } from '../plan.js';
import { readPlannedFile } from './file-stream.js';
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
  const hashes = files.map(() => newHash());
  const whole = fitsWhole(files);
  let fileError: NodeJS.ErrnoException | undefined;
  // Read whole, each file gets an empty placeholder here and is read straight into the body later.
  const placeholders = whole ? files.map(() => Buffer.alloc(0)) : [];
  const sources = whole ? [] : files.map((file, index) => hashedFileStream(file.absPath, file.bytes, hashes[index]!, (error) => (fileError ??= error)));
  files.forEach((file, index) => {
    const field = `file_${index + 1}`;
    form.append(field, placeholders[index] ?? sources[index]!, { filename: file.name, contentType: file.contentType, knownLength: file.bytes });
    const metadata = flatMetadata(file);
    if (metadata) form.append(field, JSON.stringify(metadata));
  });
  if (whole) return wholeBody(form.getHeaders(), await readAround(form, placeholders, files, hashes), hashes);

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
 * The form's bytes in one buffer, each file read straight into the gap its placeholder left:
 * no copy of the files' bytes. Throws the error (with its path) of a file that can no longer
 * be read as checked.
 */
async function readAround(form: FormData, placeholders: readonly Buffer[], files: readonly PlannedFile[], hashes: readonly Hash[]): Promise<Buffer> {
  const length = form.getLengthSync(); // before the parts are taken out
  const parts: Buffer[] = [];
  form.on('data', (part: Buffer | string) => parts.push(typeof part === 'string' ? Buffer.from(part) : part));
  const ended = once(form, 'end');
  form.resume();
  await ended;
  // Each part with the file it stands for (-1: framing) and where it goes in the body.
  let offset = 0;
  const layout = parts.map((part) => {
    const index = placeholders.indexOf(part);
    const at = offset;
    offset += index === -1 ? part.length : files[index]!.bytes;
    return { part, index, at };
  });
  const gaps = layout.filter(({ index }) => index !== -1);
  // form-data hands on each value as given; should that ever change, files would go out empty.
  if (gaps.length !== files.length || offset !== length) throw new Error('form-data did not frame the files as expected');
  const body = Buffer.allocUnsafe(length);
  await Promise.all(gaps.map(({ index, at }) => readPlannedFile(files[index]!.absPath, files[index]!.bytes, hashes[index]!, body, at)));
  // The framing goes in last: a file that grew has one byte more read into the framing after it (the body is then not sent).
  for (const { part, index, at } of layout) if (index === -1) part.copy(body, at);
  return body;
}
