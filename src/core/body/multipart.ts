import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import FormData from 'form-data';
import type { PlannedFile } from '../inputs/plan.js';
import type { BodyReader, WholeFile } from './reader-threads.js';
import {
  fitsWhole,
  flatMetadata,
  hashedFileStream,
  hexDigests,
  newHash,
  wholeBody,
  wholeFiles,
  type FileReads,
  type RequestBody,
} from './request-body.js';

// An unguessable prefix per process and a count: a file cannot fake the boundary, as with a
// fresh random one per request, without asking for entropy on every request.
const BOUNDARY_PREFIX = `--------------------------${randomBytes(12).toString('hex')}`;
let bodies = 0;

/**
 * multipart/form-data: per file, a part with the file (name and Content-Type by
 * extension) and, under the same field name, a part with its metadata JSON. A small request
 * is read whole first; a larger one streams its files.
 */
export async function multipartBody(
  files: readonly PlannedFile[],
  reader: BodyReader,
  reads?: FileReads,
): Promise<RequestBody> {
  const form = new FormData();
  form.setBoundary(`${BOUNDARY_PREFIX}${(bodies++).toString(36)}`);
  const whole = fitsWhole(files);
  let fileError: NodeJS.ErrnoException | undefined;
  // Read whole, each file gets a marker here, and its bytes take its place in the body.
  const placeholders = whole ? files.map((_, index) => Buffer.from(markerOf(index))) : [];
  const hashes = whole ? [] : files.map(() => newHash());
  const sources = hashes.map((hash, index) => hashedFileStream(files[index]!, hash, (error) => (fileError ??= error)));
  files.forEach((file, index) => {
    const field = `file_${index + 1}`;
    form.append(field, placeholders[index] ?? sources[index]!, {
      filename: file.name,
      contentType: file.contentType,
      knownLength: file.bytes,
    });
    const metadata = flatMetadata(file);
    if (metadata) form.append(field, JSON.stringify(metadata));
  });
  if (whole)
    return await wholeBody(
      form.getHeaders(),
      framedAround(form, files, () => wholeFiles(files, reader, false, reads)),
      reader,
    );

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

// A marker per file in the form's bytes, found again to put the file in its place: random per
// process, so no file name or metadata holds one.
const MARKER = `u21-media-file-${randomBytes(12).toString('hex')}-`;
const markerOf = (index: number) => `${MARKER}${index}.`;

/** The form's framing, from form-data's bytes with markers where the files go, around the files read whole. */
function framedAround(
  form: FormData,
  files: readonly PlannedFile[],
  readFiles: () => ReadonlyArray<Promise<WholeFile>>,
): Array<string | Promise<WholeFile>> {
  const framing = form.getBuffer();
  const pieces: Array<string | number> = [];
  let from = 0;
  let framed = 0;
  files.forEach((file, index) => {
    const marker = markerOf(index);
    const at = framing.indexOf(marker, from);
    if (at === -1) unexpectedFraming();
    // The framing came from strings, and a marker is ASCII: each piece between is whole UTF-8.
    pieces.push(framing.toString('utf8', from, at), index);
    framed += at - from + file.bytes;
    from = at + marker.length;
  });
  pieces.push(framing.toString('utf8', from));
  // Should form-data ever frame values differently, files would go out wrong: checked against its own count.
  if (framed + framing.length - from !== form.getLengthSync()) unexpectedFraming();
  // Read only once the framing is known good: a read started before a framing error would be left unheard.
  const read = readFiles();
  return pieces.map((piece) => (typeof piece === 'number' ? read[piece]! : piece));
}

function unexpectedFraming(): never {
  throw new Error('form-data did not frame the files as expected');
}
