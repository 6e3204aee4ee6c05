import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { assemble, recycle } from '../../src/core/body/reader-threads.js';
import { tempDir } from '../helpers.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function fileOf(dir: string, name: string, data: Buffer) {
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, bytes: data.length };
}

describe('reader threads', () => {
  it('put framing and files in order, a file last included, and hash each file', async () => {
    const dir = await tempDir();
    const [a, b] = [randomBytes(70_000), randomBytes(3)];
    const { body, digests } = await assemble(['héad', await fileOf(dir, 'a', a), '\r\n€', await fileOf(dir, 'b', b)]);
    expect(body.equals(Buffer.concat([Buffer.from('héad'), a, Buffer.from('\r\n€'), b]))).toBe(true);
    expect(digests).toEqual([sha256(a), sha256(b)]);
  });

  it('give each request its own body when many are asked for at once', async () => {
    const dir = await tempDir();
    const contents = Array.from({ length: 200 }, (_, i) => randomBytes(1 + i * 37));
    const files = await Promise.all(contents.map((data, i) => fileOf(dir, `f${i}`, data)));
    const bodies = await Promise.all(files.map((file, i) => assemble([`${i}:`, file])));
    bodies.forEach(({ body, digests }, i) => {
      expect(body.equals(Buffer.concat([Buffer.from(`${i}:`), contents[i]!]))).toBe(true);
      expect(digests).toEqual([sha256(contents[i]!)]);
    });
  });

  it('hand bodies back a mebibyte at a time, not once all asked for at once are read', async () => {
    const dir = await tempDir();
    const files = await Promise.all([0, 1, 2, 3].map((i) => fileOf(dir, `large${i}`, randomBytes(700_000))));
    let lastSettled = false;
    const bodies = files.map((file) => assemble([file]));
    void bodies[3]!.then(() => (lastSettled = true));
    await bodies[0];
    // One message back would settle all four in this same turn, the last's callback first.
    await null;
    expect(lastSettled).toBe(false);
    await Promise.all(bodies);
  });

  it.each([
    ['as they are', false],
    ['as base64', true],
  ])('read into the memory of a body given back, with its old bytes overwritten (%s)', async (_, base64) => {
    const dir = await tempDir();
    const first = await assemble([await fileOf(dir, 'big', Buffer.alloc(60_000, 0xaa))]);
    const memory = first.body.buffer.byteLength;
    const data = randomBytes(40_000);
    // Given back while a request waits, so it goes to the thread with that request.
    const next = assemble(['b:', { ...(await fileOf(dir, 'b', data)), base64 }, ':end']);
    recycle(first.body);
    const second = await next;
    expect(first.body.buffer.byteLength).toBe(0); // handed over
    expect(second.body.buffer.byteLength).toBe(memory); // the same memory, read into again
    expect(second.body.toString('latin1')).toBe(`b:${data.toString(base64 ? 'base64' : 'latin1')}:end`);
    expect(second.digests).toEqual([sha256(data)]);
  });

  it('keep no memory given back once no request waits', async () => {
    const dir = await tempDir();
    const first = await assemble([await fileOf(dir, 'a', randomBytes(30_000))]);
    recycle(first.body);
    const second = await assemble([await fileOf(dir, 'b', randomBytes(30_000))]);
    expect(first.body.buffer.byteLength).toBeGreaterThan(0); // not handed over
    expect(second.body.buffer).not.toBe(first.body.buffer);
  });

  it('reject with the error of a file that is gone, naming it, and close every file they opened', async () => {
    const dir = await tempDir();
    const kept = await fileOf(dir, 'kept', randomBytes(10));
    await assemble([kept]); // the threads are started, with their own descriptors
    const before = readdirSync('/proc/self/fd').length;
    const gone = { path: join(dir, 'gone'), bytes: 10 };
    await expect(assemble([kept, gone])).rejects.toMatchObject({ code: 'ENOENT', path: gone.path });
    const grown = await fileOf(dir, 'grown', randomBytes(11));
    await expect(assemble([{ ...grown, bytes: 10, base64: true }])).rejects.toMatchObject({ code: 'file_changed', path: grown.path });
    await Promise.all(Array.from({ length: 50 }, () => assemble([kept])));
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  it('do not keep the process alive once idle', async () => {
    const dir = await tempDir();
    const file = await fileOf(dir, 'a', Buffer.from('abc'));
    const script = `import('${new URL('../../dist/core/body/reader-threads.js', import.meta.url).href}').then((m) => m.assemble([${JSON.stringify(file)}])).then(({ body }) => console.log(body.toString()))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    expect(stdout.trim()).toBe('abc');
  });
});
