// The limit: a bare undici loop at the given concurrency. Given a file, it sends one prebuilt
// multipart body over and over; given a folder, it reads and hashes each file first, which is
// the least any uploader of files must do; with `stream`, it streams each file from disk into
// its request, hashing it on the way, as an uploader of large files does.
// Usage: node undici-loop.mjs <url> <file or folder> <count> <concurrency> [stream]
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';

const [url, source, countText, concurrencyText, mode] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText);
const boundary = '----u21benchboundary';
const head = Buffer.from(
  `--${boundary}\r\nContent-Disposition: form-data; name="file_1"; filename="f.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
);
const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
const frame = (bytes) => Buffer.concat([head, bytes, tail]);
const files = statSync(source).isDirectory()
  ? readdirSync(source)
      .filter((n) => n.endsWith('.jpg') || n.endsWith('.pdf'))
      .sort()
      .map((n) => join(source, n))
  : undefined;
const prebuilt = files ? undefined : frame(await readFile(source));
async function* streamed(path) {
  const hash = createHash('sha256');
  yield head;
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    hash.update(chunk);
    yield chunk;
  }
  hash.digest('hex');
  yield tail;
}
const bodyOf = async (index) => {
  if (prebuilt) return prebuilt;
  if (mode === 'stream') {
    const path = files[index % files.length];
    return { body: streamed(path), length: head.length + statSync(path).size + tail.length };
  }
  const bytes = await readFile(files[index % files.length]);
  createHash('sha256').update(bytes).digest('hex');
  return frame(bytes);
};
const dispatcher = new Agent({ connections: concurrency });
let next = 0;
let ok = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const made = await bodyOf(next++);
      // A prebuilt body is a Buffer; a streamed one comes with its length.
      const body = Buffer.isBuffer(made) ? made : made.body;
      const response = await request(url, {
        method: 'PUT',
        dispatcher,
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(made.length),
          'u21-key': 'sandbox-key',
        },
        body,
      });
      await response.body.dump();
      if (response.statusCode === 200) ok++;
    }
  }),
);
await dispatcher.close();
console.log(JSON.stringify({ ok }));
