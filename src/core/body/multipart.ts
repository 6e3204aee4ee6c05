import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import FormData from 'form-data';
import type { PlannedFile } from '../plan.js';
import { flatMetadata, type RequestBody } from './request-body.js';

/**
 * multipart/form-data: per file, a part with the file (name and Content-Type by
 * extension) and, under the same field name, a part with its metadata JSON.
 */
export function multipartBody(files: readonly PlannedFile[]): RequestBody {
  const form = new FormData();
  files.forEach((file, index) => {
    const field = `file_${index + 1}`;
    form.append(field, createReadStream(file.absPath), {
      filename: file.name,
      contentType: file.contentType,
      knownLength: file.bytes,
    });
    const metadata = flatMetadata(file);
    if (metadata) form.append(field, JSON.stringify(metadata));
  });
  const length = form.getLengthSync();
  // form-data is an old-style stream; a PassThrough gives undici a proper Readable.
  const body = form.pipe(new PassThrough());
  return { headers: { ...form.getHeaders(), 'content-length': String(length) }, body, length };
}
