import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderThreads } from '../../src/core/body/reader-threads.js';
import { tempDir } from '../helpers.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function fileOf(dir: string, name: string, data: Buffer) {
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, bytes: data.length };
}

const readers: ReaderThreads[] = [];
afterEach(async () => {
  await Promise.all(readers.splice(0).map((reader) => reader.close()));
});
/** A reader of its own per test, with a set number of threads: nothing depends on the machine's cores. */
const readerOf = (threads: number) => {
  const reader = new ReaderThreads(threads);
  readers.push(reader);
  return reader;
};

/** The files under `dir` this process holds open, read from /proc/self/fd. */
function openFilesIn(dir: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [target] : [];
    } catch {
      return []; // closed since the listing
    }
  });
}

describe('reader threads', () => {
  it('put framing and files in order, a file last included, and hash each file', async () => {
    const { assemble } = bind(readerOf(2));
    const dir = await tempDir();
    const [a, b] = [randomBytes(70_000), randomBytes(3)];
    const { body, digests } = await assemble(['héad', await fileOf(dir, 'a', a), '\r\n€', await fileOf(dir, 'b', b)]);
    expect(body.equals(Buffer.concat([Buffer.from('héad'), a, Buffer.from('\r\n€'), b]))).toBe(true);
    expect(digests).toEqual([sha256(a), sha256(b)]);
  });

  it.each([1, 3, 4])('give each request its own body when many are asked for at once (%i threads)', async (threads) => {
    const { assemble } = bind(readerOf(threads));
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
    // One thread: all four requests go to it, in one message.
    const { assemble } = bind(readerOf(1));
    const dir = await tempDir();
    const files = await Promise.all([0, 1, 2, 3].map((i) => fileOf(dir, `large${i}`, randomBytes(700_000))));
    let lastSettled = false;
    const bodies = files.map((file) => assemble([file]));
    void bodies[3]!.then(() => (lastSettled = true));
    await bodies[0];
    // One message back would settle all four in this same turn, the last's callback first.
    await Promise.resolve();
    expect(lastSettled).toBe(false);
    await Promise.all(bodies);
  });

  it.each([
    ['as they are', false],
    ['as base64', true],
  ])('read into the memory of a body given back, with its old bytes overwritten (%s)', async (_, base64) => {
    const { assemble, recycle } = bind(readerOf(1));
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
    const { assemble, recycle } = bind(readerOf(1));
    const dir = await tempDir();
    const first = await assemble([await fileOf(dir, 'a', randomBytes(30_000))]);
    recycle(first.body);
    const second = await assemble([await fileOf(dir, 'b', randomBytes(30_000))]);
    expect(first.body.buffer.byteLength).toBeGreaterThan(0); // not handed over
    expect(second.body.buffer).not.toBe(first.body.buffer);
  });

  it('reject with the error of a file that is gone, naming it, and close every file they opened', async () => {
    const { assemble } = bind(readerOf(3));
    const dir = await tempDir();
    const kept = await fileOf(dir, 'kept', randomBytes(10));
    await assemble([kept]);
    const gone = { path: join(dir, 'gone'), bytes: 10 };
    await expect(assemble([kept, gone])).rejects.toMatchObject({ code: 'ENOENT', path: gone.path });
    const grown = await fileOf(dir, 'grown', randomBytes(11));
    await expect(assemble([{ ...grown, bytes: 10, base64: true }])).rejects.toMatchObject({ code: 'file_changed', path: grown.path });
    await Promise.all(Array.from({ length: 50 }, () => assemble([kept])));
    // No descriptor of the process is left on a file of this folder (a count of all of them would see the runner's own come and go).
    expect(openFilesIn(dir)).toEqual([]);
  });

  it('start one thread for a run of 10 small files read at once, however many they may have', async () => {
    const reader = readerOf(16);
    const dir = await tempDir();
    const files = await Promise.all(Array.from({ length: 10 }, (_, i) => fileOf(dir, `f${i}`, randomBytes(100 + i))));
    const bodies = await Promise.all(files.map((file) => reader.assemble([file])));
    expect(bodies.map(({ body }) => body.length)).toEqual(files.map((file) => file.bytes));
    expect(reader.threadsStarted).toBe(1);
  });

  it('start another thread only once every running one is busy, one at a time, and never more than their number', async () => {
    const reader = readerOf(3);
    const dir = await tempDir();
    const files = await Promise.all(Array.from({ length: 10 }, (_, i) => fileOf(dir, `f${i}`, randomBytes(1000))));
    await reader.assemble([files[0]!]);
    expect(reader.threadsStarted).toBe(1);
    // The first thread runs and is idle: it takes the next alone, however many come after it.
    await reader.assemble([files[1]!]);
    expect(reader.threadsStarted).toBe(1);
    // A burst while it runs: it is busy from the first body on, so one more starts, and no third while that one starts.
    await Promise.all(files.map((file) => reader.assemble([file])));
    expect(reader.threadsStarted).toBe(2);
    for (let wave = 0; wave < 5; wave++) await Promise.all(files.map((file) => reader.assemble([file])));
    expect(reader.threadsStarted).toBe(3);
  });

  it('do not keep the process alive once idle', async () => {
    const dir = await tempDir();
    const file = await fileOf(dir, 'a', Buffer.from('abc'));
    const script = `import('${new URL('../../dist/core/body/reader-threads.js', import.meta.url).href}').then((m) => new m.ReaderThreads(2).assemble([${JSON.stringify(file)}])).then(({ body }) => console.log(body.toString()))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    expect(stdout.trim()).toBe('abc');
  });

  it('of two runs share nothing: memory given back to one is not read into by the other, and closing one leaves the other working', async () => {
    const [one, other] = [readerOf(1), readerOf(1)];
    const dir = await tempDir();
    const first = await one.assemble([await fileOf(dir, 'a', randomBytes(60_000))]);
    const data = randomBytes(40_000);
    const next = other.assemble([await fileOf(dir, 'b', data)]);
    one.recycle(first.body); // no request waits on `one`: not kept, and never `other`'s
    expect((await next).body.buffer).not.toBe(first.body.buffer);
    expect(first.body.buffer.byteLength).toBeGreaterThan(0);
    await one.close();
    await expect(one.assemble([await fileOf(dir, 'c', data)])).rejects.toThrow(/closed/);
    expect((await other.assemble([await fileOf(dir, 'd', data)])).body.equals(data)).toBe(true);
  });
});

/** The reader's calls, bound to it. */
const bind = (reader: ReaderThreads) => ({ assemble: reader.assemble.bind(reader), recycle: reader.recycle.bind(reader) });
