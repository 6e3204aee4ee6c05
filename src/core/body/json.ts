import { Readable } from 'node:stream';
import type { PlannedFile } from '../inputs/plan.js';
import { base64Length, base64Pieces } from '../files/base64.js';
import type { BodyReader } from './reader-threads.js';
import {
  fitsWhole,
  hashedFileStream,
  hexDigests,
  newHash,
  wholeBody,
  wholeFiles,
  type FileReads,
  type RequestBody,
} from './request-body.js';

// A multiple of 3, so that almost every read encodes to base64 without carrying bytes over.
const READ_SIZE = 3 * 64 * 1024;

/**
 * The JSON format: a top-level array of `{media, name, media_type, custom_data}`, media as
 * base64. A small request is read whole first; a larger one streams its files.
 */
export async function jsonBody(
  files: readonly PlannedFile[],
  reader: BodyReader,
  reads?: FileReads,
): Promise<RequestBody> {
  // The closing bracket ends the last file's tail: a lone file's body is then three pieces, made in place.
  const parts = files.map((file, index) => ({
    file,
    head: `${index === 0 ? '[' : ','}{"media":"`,
    tail: `",${JSON.stringify(jsonFields(file)).slice(1)}${index === files.length - 1 ? ']' : ''}`,
  }));
  const headers = { 'content-type': 'application/json' };
  if (fitsWhole(files)) {
    const read = wholeFiles(files, reader, true, reads);
    return await wholeBody(
      headers,
      parts.flatMap(({ head, tail }, index) => [head, read[index]!, tail]),
      reader,
    );
  }

  const hashes = files.map(() => newHash());

  let fileError: NodeJS.ErrnoException | undefined;
  const length = parts.reduce(
    (sum, p) => sum + Buffer.byteLength(p.head) + base64Length(p.file.bytes) + Buffer.byteLength(p.tail),
    0,
  );
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const [index, { file, head, tail }] of parts.entries()) {
      yield Buffer.from(head);
      yield* base64Of(hashedFileStream(file, hashes[index]!, (error) => (fileError ??= error), READ_SIZE));
      yield Buffer.from(tail);
    }
  }
  const stream = Readable.from(body(), { objectMode: false });
  return {
    headers: { ...headers, 'content-length': String(length) },
    body: stream,
    length,
    digests: hexDigests(hashes),
    fileError: () => fileError,
    destroy: () => stream.destroy(),
  };
}

function jsonFields(file: PlannedFile) {
  return {
    name: file.name,
    ...(file.mediaType !== undefined && { media_type: file.mediaType }),
    ...(file.customData !== undefined && { custom_data: file.customData }),
  };
}

/** Streams a file as standard padded base64, never holding the whole file. */
async function* base64Of(file: Readable): AsyncGenerator<Uint8Array> {
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of file) {
    const data = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    const whole = data.length - (data.length % 3);
    yield* encoded(data.subarray(0, whole));
    carry = data.subarray(whole);
  }
  if (carry.length > 0) yield* encoded(carry);
}

/** Bytes as base64; only the last piece of a file may be padded. */
function* encoded(bytes: Buffer): Generator<Buffer> {
  for (const piece of base64Pieces(bytes)) yield Buffer.from(piece, 'latin1');
}
