import { Readable } from 'node:stream';
import type { PlannedFile } from '../plan.js';
import { hashedFileStream, newHash, type RequestBody } from './request-body.js';

// A multiple of 3, so that almost every read encodes to base64 without carrying bytes over.
const READ_SIZE = 3 * 64 * 1024;
// Reads are encoded in pieces whose base64 stays below V8's 128 KiB bound for ordinary heap
// objects: a larger string goes to the large-object space, and encoding ran ten times slower.
const ENCODE_SIZE = 3 * 16 * 1024;

/** The JSON format: a top-level array of `{media, name, media_type, custom_data}`, media streamed as base64. */
export function jsonBody(files: readonly PlannedFile[]): RequestBody {
  const parts = files.map((file, index) => ({
    file,
    hash: newHash(),
    head: Buffer.from(`${index === 0 ? '[' : ','}{"media":"`),
    tail: Buffer.from(`",${JSON.stringify(jsonFields(file)).slice(1)}`),
  }));
  const close = Buffer.from(']');
  let fileError: NodeJS.ErrnoException | undefined;
  const length =
    parts.reduce((sum, p) => sum + p.head.length + base64Length(p.file.bytes) + p.tail.length, 0) + close.length;

  async function* body(): AsyncGenerator<Uint8Array> {
    for (const { file, hash, head, tail } of parts) {
      yield head;
      yield* base64Of(hashedFileStream(file.absPath, file.bytes, hash, (error) => (fileError ??= error), READ_SIZE));
      yield tail;
    }
    yield close;
  }
  const stream = Readable.from(body(), { objectMode: false });
  return {
    headers: { 'content-type': 'application/json', 'content-length': String(length) },
    body: stream,
    length,
    digests: () => parts.map((p) => p.hash.copy().digest('hex')),
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
    for (let at = 0; at < whole; at += ENCODE_SIZE) yield base64(data.subarray(at, Math.min(at + ENCODE_SIZE, whole)));
    carry = data.subarray(whole);
  }
  if (carry.length > 0) yield base64(carry);
}

const base64 = (bytes: Buffer) => Buffer.from(bytes.toString('base64'), 'latin1');
