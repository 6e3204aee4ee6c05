import { Readable } from 'node:stream';
import type { PlannedFile } from '../plan.js';
import { assemble } from './reader-threads.js';
import { fitsWhole, hashedFileStream, hexDigests, newHash, wholeBody, type RequestBody } from './request-body.js';

// A multiple of 3, so that almost every read encodes to base64 without carrying bytes over.
const READ_SIZE = 3 * 64 * 1024;
// Reads are encoded in pieces whose base64 stays below V8's 128 KiB bound for ordinary heap
// objects: a larger string goes to the large-object space, and encoding ran ten times slower.
const ENCODE_SIZE = 3 * 16 * 1024;

/**
 * The JSON format: a top-level array of `{media, name, media_type, custom_data}`, media as
 * base64. A small request is read whole first; a larger one streams its files.
 */
export async function jsonBody(files: readonly PlannedFile[]): Promise<RequestBody> {
  const parts = files.map((file, index) => ({
    file,
    head: `${index === 0 ? '[' : ','}{"media":"`,
    tail: `",${JSON.stringify(jsonFields(file)).slice(1)}`,
  }));
  const close = ']';
  const headers = { 'content-type': 'application/json' };
  if (fitsWhole(files)) {
    const pieces = parts.flatMap(({ file, head, tail }) => [head, { path: file.absPath, bytes: file.bytes, base64: true }, tail]);
    return wholeBody(headers, await assemble([...pieces, close]));
  }

  const hashes = files.map(() => newHash());

  let fileError: NodeJS.ErrnoException | undefined;
  const length = parts.reduce((sum, p) => sum + Buffer.byteLength(p.head) + base64Length(p.file.bytes) + Buffer.byteLength(p.tail), 0) + close.length;
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const [index, { file, head, tail }] of parts.entries()) {
      yield Buffer.from(head);
      yield* base64Of(hashedFileStream(file.absPath, file.bytes, hashes[index]!, (error) => (fileError ??= error), READ_SIZE));
      yield Buffer.from(tail);
    }
    yield Buffer.from(close);
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

const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3);

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

/** Bytes as base64, in pieces of at most ENCODE_SIZE input bytes; only the last piece may be padded. */
function* encoded(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += ENCODE_SIZE) {
    yield Buffer.from(bytes.subarray(at, Math.min(at + ENCODE_SIZE, bytes.length)).toString('base64'), 'latin1');
  }
}
