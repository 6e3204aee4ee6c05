// The limit: a bare undici loop sending one prebuilt multipart body over and over, at the
// given concurrency. Usage: node undici-loop.mjs <url> <file> <count> <concurrency>
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

const [url, file, countText, concurrencyText] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText);
const boundary = '----u21benchboundary';
const body = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file_1"; filename="f.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
  readFileSync(file),
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);
const dispatcher = new Agent({ connections: concurrency });
let next = 0;
let ok = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      const response = await request(url, {
        method: 'PUT',
        dispatcher,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'u21-key': 'sandbox-key' },
        body,
      });
      await response.body.dump();
      if (response.statusCode === 200) ok++;
    }
  }),
);
await dispatcher.close();
console.log(JSON.stringify({ ok }));
