import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderThreads } from '../../src/core/body/reader-threads.js';
import { FRAMING_ROOM } from '../../src/core/files/framing.js';
import { identityOf } from '../../src/core/files/file-identity.js';
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
  it.each([
    ['as they are', false],
    ['as base64', true],
  ])('read a file whole %s, with room for framing around it, and hash its bytes', async (_, base64) => {
    const { read } = bind(readerOf(2));
    const dir = await tempDir();
    const data = randomBytes(70_000);
    const { bytes, sha256: digest } = await read(await fileOf(dir, 'a', data), base64);
    expect(bytes.toString('latin1')).toBe(data.toString(base64 ? 'base64' : 'latin1'));
    expect(digest).toBe(sha256(data));
    expect(bytes.byteOffset).toBe(FRAMING_ROOM);
    expect(bytes.buffer.byteLength - bytes.byteOffset - bytes.length).toBeGreaterThanOrEqual(FRAMING_ROOM);
  });

  it.each([1, 3, 4])('give each file its own bytes when many are asked for at once (%i threads)', async (threads) => {
    const { read } = bind(readerOf(threads));
    const dir = await tempDir();
    const contents = Array.from({ length: 200 }, (_, i) => randomBytes(1 + i * 37));
    const files = await Promise.all(contents.map((data, i) => fileOf(dir, `f${i}`, data)));
    const reads = await Promise.all(files.map((file) => read(file, false)));
    reads.forEach(({ bytes, sha256: digest }, i) => {
      expect(bytes.equals(contents[i]!)).toBe(true);
      expect(digest).toBe(sha256(contents[i]!));
    });
  });

  it('hand files back a mebibyte at a time, not once all asked for at once are read', async () => {
    // One thread: all four files go to it, in one message.
    const { read } = bind(readerOf(1));
    const dir = await tempDir();
    const files = await Promise.all([0, 1, 2, 3].map((i) => fileOf(dir, `large${i}`, randomBytes(700_000))));
    let lastSettled = false;
    const reads = files.map((file) => read(file, false));
    void reads[3]!.then(() => (lastSettled = true));
    await reads[0];
    // One message back would settle all four in this same turn, the last's callback first.
    await Promise.resolve();
    expect(lastSettled).toBe(false);
    await Promise.all(reads);
  });

  it.each([
    ['as they are', false],
    ['as base64', true],
  ])('read into memory given back, with its old bytes overwritten (%s)', async (_, base64) => {
    const { read, recycle } = bind(readerOf(1));
    const dir = await tempDir();
    const first = await read(await fileOf(dir, 'big', Buffer.alloc(60_000, 0xaa)), false);
    const memory = first.bytes.buffer.byteLength;
    recycle(first.bytes);
    const data = randomBytes(40_000);
    const second = await read(await fileOf(dir, 'b', data), base64);
    expect(first.bytes.buffer.byteLength).toBe(0); // handed over
    expect(second.bytes.buffer.byteLength).toBe(memory); // the same memory, read into again
    expect(second.bytes.toString('latin1')).toBe(data.toString(base64 ? 'base64' : 'latin1'));
    expect(second.sha256).toBe(sha256(data));
  });

  it('keep at most 16 MiB of memory given back, and hand a thread one piece for each file it reads', async () => {
    const { read, recycle } = bind(readerOf(1));
    const dir = await tempDir();
    const big = await fileOf(dir, 'big', randomBytes(4_000_000));
    const small = await fileOf(dir, 'small', randomBytes(10));
    const given = await Promise.all(Array.from({ length: 5 }, () => read(big, false)));
    for (const { bytes } of given) recycle(bytes);
    const handedOver = () => given.map(({ bytes }) => bytes.buffer.byteLength === 0);
    await read(small, false);
    expect(handedOver()).toEqual([true, false, false, false, false]);
    await Promise.all([read(small, false), read(small, false), read(small, false)]);
    // Four of 4 MB fit in 16 MiB; the fifth was let go, never handed over.
    expect(handedOver()).toEqual([true, true, true, true, false]);
  });

  it('hash a file without holding it, only if it is the file the check saw', async () => {
    const { digest } = bind(readerOf(1));
    const dir = await tempDir();
    const data = randomBytes(3_000_000); // over the mebibyte a digest reads at a time
    const { path } = await fileOf(dir, 'video.mp4', data);
    expect(await digest(path)).toBe(sha256(data));
    const identity = identityOf(await stat(path));
    expect(await digest(path, identity)).toBe(sha256(data));
    await expect(digest(path, { ...identity, size: identity.size + 1 })).rejects.toMatchObject({
      code: 'file_changed',
      path,
    });
    await expect(digest(join(dir, 'gone'))).rejects.toMatchObject({ code: 'ENOENT', path: join(dir, 'gone') });
  });

  it('reject with the error of a file that is gone, naming it, and close every file they opened', async () => {
    const { read, digest } = bind(readerOf(3));
    const dir = await tempDir();
    const kept = await fileOf(dir, 'kept', randomBytes(10));
    await read(kept, false);
    const gone = { path: join(dir, 'gone'), bytes: 10 };
    await expect(read(gone, false)).rejects.toMatchObject({ code: 'ENOENT', path: gone.path });
    const grown = await fileOf(dir, 'grown', randomBytes(11));
    await expect(read({ ...grown, bytes: 10 }, true)).rejects.toMatchObject({ code: 'file_changed', path: grown.path });
    await Promise.all(Array.from({ length: 50 }, () => read(kept, false)));
    await Promise.all(Array.from({ length: 50 }, () => digest(kept.path)));
    // No descriptor of the process is left on a file of this folder (a count of all of them would see the runner's own come and go).
    expect(openFilesIn(dir)).toEqual([]);
  });

  it('start one thread for a run of 10 small files read at once, however many they may have', async () => {
    const reader = readerOf(16);
    const dir = await tempDir();
    const files = await Promise.all(Array.from({ length: 10 }, (_, i) => fileOf(dir, `f${i}`, randomBytes(100 + i))));
    const reads = await Promise.all(files.map((file) => reader.read(file, false)));
    expect(reads.map(({ bytes }) => bytes.length)).toEqual(files.map((file) => file.bytes));
    expect(reader.threadsStarted).toBe(1);
  });

  it('start another thread only once every running one is busy, one at a time, and never more than their number', async () => {
    const reader = readerOf(3);
    const dir = await tempDir();
    const files = await Promise.all(Array.from({ length: 10 }, (_, i) => fileOf(dir, `f${i}`, randomBytes(1000))));
    await reader.read(files[0]!, false);
    expect(reader.threadsStarted).toBe(1);
    // The first thread runs and is idle: it takes the next alone, however many come after it.
    await reader.read(files[1]!, false);
    expect(reader.threadsStarted).toBe(1);
    // A burst while it runs: it is busy from the first file on, so one more starts, and no third while that one starts.
    await Promise.all(files.map((file) => reader.read(file, false)));
    expect(reader.threadsStarted).toBe(2);
    for (let wave = 0; wave < 5; wave++) await Promise.all(files.map((file) => reader.read(file, false)));
    expect(reader.threadsStarted).toBe(3);
  });

  it('do not keep the process alive once idle', async () => {
    const dir = await tempDir();
    const file = await fileOf(dir, 'a', Buffer.from('abc'));
    const script = `import('${new URL('../../dist/core/body/reader-threads.js', import.meta.url).href}').then((m) => new m.ReaderThreads(2).read(${JSON.stringify(file)}, false)).then(({ bytes }) => console.log(bytes.toString()))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 10_000,
    });
    expect(stdout.trim()).toBe('abc');
  });

  it('of two runs share nothing: memory given back to one is not read into by the other, and closing one leaves the other working', async () => {
    const [one, other] = [readerOf(1), readerOf(1)];
    const dir = await tempDir();
    const first = await one.read(await fileOf(dir, 'a', randomBytes(60_000)), false);
    const data = randomBytes(40_000);
    one.recycle(first.bytes); // kept by `one`, never `other`'s
    const next = await other.read(await fileOf(dir, 'b', data), false);
    expect(next.bytes.buffer).not.toBe(first.bytes.buffer);
    expect(first.bytes.buffer.byteLength).toBeGreaterThan(0);
    await one.close();
    await expect(one.read(await fileOf(dir, 'c', data), false)).rejects.toThrow(/closed/);
    expect((await other.read(await fileOf(dir, 'd', data), false)).bytes.equals(data)).toBe(true);
  });
});

/** The reader's calls, bound to it. */
const bind = (reader: ReaderThreads) => ({
  read: reader.read.bind(reader),
  digest: reader.digest.bind(reader),
  recycle: reader.recycle.bind(reader),
});
