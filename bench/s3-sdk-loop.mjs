// The baseline for reading from S3: `aws s3 cp`-like streaming with the SDK alone. It lists a
// prefix, and for each object pipes the body of its GET into a PUT to the sink (a multipart
// body, hashed on the way, as the undici loop streams files), `concurrency` at a time.
// Credentials and region come from the environment, as for the tool.
// Usage: node s3-sdk-loop.mjs <sink url> <s3 endpoint> <bucket> <prefix> <concurrency>
import { createHash } from 'node:crypto';
import { GetObjectCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { Agent, request } from 'undici';

const [url, endpoint, bucket, prefix, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const client = new S3Client({ endpoint, forcePathStyle: true, maxAttempts: 5 });
const boundary = '----u21benchboundary';
const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
const headOf = (key) =>
  Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file_1"; filename="${key.split('/').pop()}"\r\nContent-Type: ${key.endsWith('.pdf') ? 'application/pdf' : 'image/jpeg'}\r\n\r\n`,
  );

async function* framed(head, body) {
  const hash = createHash('sha256');
  yield head;
  for await (const chunk of body) {
    hash.update(chunk);
    yield chunk;
  }
  hash.digest('hex');
  yield tail;
}

// Listed page by page, as the objects are sent.
const pages = paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix });
const keys = (async function* () {
  for await (const page of pages) for (const object of page.Contents ?? []) yield object.Key;
})();
const dispatcher = new Agent({ connections: concurrency });
let ok = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    for (let next = await keys.next(); !next.done; next = await keys.next()) {
      const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: next.value }));
      const head = headOf(next.value);
      const response = await request(url, {
        method: 'PUT',
        dispatcher,
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + object.ContentLength + tail.length),
          'u21-key': 'sandbox-key',
        },
        body: framed(head, object.Body),
      });
      await response.body.dump();
      if (response.statusCode === 200) ok++;
    }
  }),
);
await dispatcher.close();
client.destroy();
console.log(JSON.stringify({ ok }));
