import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import FormData from 'form-data';
import type { PlannedFile } from '../plan.js';
import { flatMetadata, hashedFileStream, newHash, readWhole, wholeBody, type RequestBody } from './request-body.js';

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
  const whole = await readWhole(files, hashes);
  let fileError: NodeJS.ErrnoException | undefined;
  const sources = whole ? [] : files.map((file, index) => hashedFileStream(file.absPath, file.bytes, hashes[index]!, (error) => (fileError ??= error)));
  files.forEach((file, index) => {
    const field = `file_${index + 1}`;
    form.append(field, whole?.[index] ?? sources[index]!, { filename: file.name, contentType: file.contentType, knownLength: file.bytes });
    const metadata = flatMetadata(file);
    if (metadata) form.append(field, JSON.stringify(metadata));
  });
  if (whole) return wholeBody(form.getHeaders(), await bufferOf(form), hashes);

  const length = form.getLengthSync();
  // form-data is an old-style stream; a PassThrough gives undici a proper Readable,
  // and a read error must reach it, or the request would wait forever.
  const body = new PassThrough();
  form.on('error', (error) => body.destroy(error));
  form.pipe(body);
  return {
    headers: { ...form.getHeaders(), 'content-length': String(length) },
    body,
    length,
    digests: () => hashes.map((h) => h.copy().digest('hex')),
    fileError: () => fileError,
    // form-data opens every file up front; those it had not reached yet must be closed too.
    destroy: () => {
      body.destroy();
      for (const source of sources) source.destroy();
    },
  };
}

/** A form of buffers as one buffer, each part copied once: form-data's getBuffer copies all it has so far for every part. */
async function bufferOf(form: FormData): Promise<Buffer> {
  const chunks: Buffer[] = [];
  form.on('data', (chunk: Buffer | string) => chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
  const ended = once(form, 'end');
  form.resume();
  await ended;
  return Buffer.concat(chunks);
}
