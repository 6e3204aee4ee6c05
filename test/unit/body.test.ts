import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, truncateSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { afterAll, describe, expect, it } from 'vitest';
import { PlannedFileStream } from '../../src/core/body/file-stream.js';
import { jsonBody } from '../../src/core/body/json.js';
import { multipartBody } from '../../src/core/body/multipart.js';
import type { PlannedFile } from '../../src/core/inputs/plan.js';
import { WHOLE_AT_MOST } from '../../src/core/files/file-types.js';
import type { RequestBody } from '../../src/core/body/request-body.js';
import { ReaderThreads } from '../../src/core/body/reader-threads.js';
import { parseMultipart } from '../../src/sandbox/parse-body.js';
import { tempDir } from '../helpers.js';

async function planned(
  dir: string,
  name: string,
  data: Buffer,
  extra: Partial<PlannedFile> = {},
): Promise<PlannedFile> {
  const absPath = join(dir, name);
  await writeFile(absPath, data);
  return {
    path: name,
    absPath,
    name,
    entityId: 'e',
    mediaTypeSource: 'none',
    bytes: data.length,
    contentType: 'image/png',
    ...extra,
  };
}

const reader = new ReaderThreads(1);
afterAll(() => reader.close());

/** The body as text, whether whole or streamed. */
const textOf = async (body: RequestBody) => (Buffer.isBuffer(body.body) ? body.body.toString() : await text(body.body));

describe('JSON body', () => {
  it.each([
    // Sizes around the read size and its remainders mod 3 exercise the carried bytes; over 5 MiB in all, so streamed.
    ['streamed', [1, 2, 3, 196_607, 196_608, 196_609, 5_000_001], false],
    // Around the encoding piece (48 KiB); under 5 MiB in all, so read whole.
    ['whole', [1, 2, 3, 49_151, 49_152, 49_153, 98_305], true],
  ] as const)('gives every file as padded base64 and announces its exact length (%s)', async (_, sizes, whole) => {
    const dir = await tempDir();
    const contents = sizes.map((n) => randomBytes(n));
    const files = await Promise.all(contents.map((data, i) => planned(dir, `f${i}.png`, data)));
    files[0]!.mediaType = 'IMAGE_FACE_IMAGE';
    files[1]!.customData = { note: 'é"\n' };
    const body = await jsonBody(files, reader);
    expect(Buffer.isBuffer(body.body)).toBe(whole);
    const raw = await textOf(body);
    expect(Buffer.byteLength(raw)).toBe(body.length);
    expect(body.headers['content-length']).toBe(String(body.length));
    const parsed = JSON.parse(raw) as Array<Record<string, unknown>>;
    expect(parsed).toHaveLength(sizes.length);
    parsed.forEach((item, i) => {
      expect(item.media).toBe(contents[i]!.toString('base64'));
      expect(item.name).toBe(`f${i}.png`);
    });
    expect(parsed[0]).toMatchObject({ media_type: 'IMAGE_FACE_IMAGE' });
    expect(parsed[0]).not.toHaveProperty('custom_data');
    expect(parsed[1]).toMatchObject({ custom_data: { note: 'é"\n' } });
    expect(parsed[1]).not.toHaveProperty('media_type');
    expect(body.digests()).toEqual(contents.map((data) => createHash('sha256').update(data).digest('hex')));
  });
});

describe('multipart body', () => {
  it.each([
    ['whole', 9, true],
    ['streamed', WHOLE_AT_MOST + 1, false],
  ] as const)(
    'announces its exact length and puts the metadata part under the file field (%s)',
    async (_, size, whole) => {
      const dir = await tempDir();
      const data = randomBytes(size);
      const file = await planned(dir, 'selfie.png', data, { mediaType: 'IMAGE_FACE_IMAGE', customData: { a: 1 } });
      const body = await multipartBody([file], reader);
      expect(Buffer.isBuffer(body.body)).toBe(whole);
      const raw = Buffer.isBuffer(body.body) ? body.body : await buffer(body.body);
      expect(raw.length).toBe(body.length);
      expect(body.headers['content-length']).toBe(String(body.length));
      expect(raw.includes(data)).toBe(true);
      expect(raw.toString('latin1')).toContain('name="file_1"; filename="selfie.png"');
      expect(raw.toString('latin1')).toContain('{"media_type":"IMAGE_FACE_IMAGE","a":1}');
      expect(body.digests()).toEqual([createHash('sha256').update(data).digest('hex')]);
    },
  );

  it.each([
    ['whole', 70_000],
    ['streamed', WHOLE_AT_MOST],
  ] as const)('carries every file of a batch byte for byte, each with its metadata (%s)', async (how, large) => {
    const dir = await tempDir();
    const contents = [randomBytes(1), randomBytes(1000), randomBytes(large)];
    // Names and metadata beyond ASCII: the framing around each file is UTF-8.
    const files = await Promise.all(
      contents.map((data, i) =>
        planned(dir, `pièce ${i}.png`, data, i === 1 ? {} : { mediaType: `TYPE_${i}`, customData: { note: 'ü€' } }),
      ),
    );
    const body = await multipartBody(files, reader);
    expect(Buffer.isBuffer(body.body)).toBe(how === 'whole');
    const raw = Buffer.isBuffer(body.body) ? body.body : await buffer(body.body);
    expect(raw.length).toBe(body.length);
    const media = await parseMultipart(raw, body.headers['content-type']!, 10_000_000);
    expect(media.map((m) => [m.name, m.mediaType, m.sha256])).toEqual(
      contents.map((data, i) => [
        `pièce ${i}.png`,
        i === 1 ? null : `TYPE_${i}`,
        createHash('sha256').update(data).digest('hex'),
      ]),
    );
    expect(media[0]!.customData).toEqual({ note: 'ü€' });
    expect(body.digests()).toEqual(media.map((m) => m.sha256));
  });

  it.each([
    [WHOLE_AT_MOST, true],
    [WHOLE_AT_MOST + 1, false],
  ])('reads a request of %i bytes of files whole: %s', async (size, whole) => {
    const dir = await tempDir();
    const data = randomBytes(size);
    const body = await multipartBody([await planned(dir, 'a.png', data)], reader);
    expect(Buffer.isBuffer(body.body)).toBe(whole);
    const raw = Buffer.isBuffer(body.body) ? body.body : await buffer(body.body);
    expect(raw.includes(data)).toBe(true);
    expect(raw.length).toBe(body.length);
  });

  it.each([
    ['grew', 1001],
    ['shrank', 999],
  ])('read whole, fails with file_changed, naming the file, when it %s since the check', async (_, actual) => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.png', Buffer.alloc(actual, 1));
    await expect(multipartBody([{ ...file, bytes: 1000 }], reader)).rejects.toMatchObject({
      code: 'file_changed',
      path: file.absPath,
    });
  });
});

describe('a streamed body whose file fails before it is sent', () => {
  it.each([
    ['multipart', multipartBody],
    ['json', jsonBody],
  ] as const)('keeps the error for the request instead of throwing it (%s)', async (_, build) => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.png', randomBytes(WHOLE_AT_MOST + 1));
    truncateSync(file.absPath, 1000);
    const body = await build([file], reader);
    // Nothing takes the body for a while (a start slot is awaited); multipart reads meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(buffer(body.body as Readable)).rejects.toMatchObject({ code: 'file_changed' });
    expect(body.fileError()).toMatchObject({ code: 'file_changed', path: file.absPath });
  });
});

describe('multipart boundaries', () => {
  it('differ from body to body and stay within the 70 characters RFC 2046 allows', async () => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.png', Buffer.from('x'));
    const boundaryOf = (headers: Record<string, string>) => /boundary=(.+)$/.exec(headers['content-type']!)![1]!;
    const [first, second] = [await multipartBody([file], reader), await multipartBody([file], reader)];
    expect(boundaryOf(first.headers)).not.toBe(boundaryOf(second.headers));
    expect(boundaryOf(first.headers).length).toBeLessThanOrEqual(70);
    first.destroy();
    second.destroy();
  });
});

describe('a planned file as a stream', () => {
  const openFiles = () => readdirSync('/proc/self/fd').length;

  it('gives exactly the planned bytes and hashes them', async () => {
    const dir = await tempDir();
    const data = randomBytes(300_000);
    const file = await planned(dir, 'a.png', data);
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    for await (const chunk of new PlannedFileStream({ path: file.absPath, bytes: file.bytes }, hash, 64 * 1024))
      chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it.each([
    ['grew', 1001],
    ['shrank', 999],
  ])('fails with file_changed when the file %s since the check', async (_, actual) => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.png', Buffer.alloc(actual, 1));
    const stream = new PlannedFileStream({ path: file.absPath, bytes: 1000 }, createHash('sha256'), 64 * 1024);
    await expect(text(stream)).rejects.toMatchObject({ code: 'file_changed' });
  });

  it('closes its file when destroyed halfway', async () => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.png', randomBytes(1_000_000));
    const before = openFiles();
    const stream = new PlannedFileStream({ path: file.absPath, bytes: file.bytes }, createHash('sha256'), 64 * 1024);
    await new Promise((resolve) => stream.once('data', resolve));
    stream.destroy();
    await new Promise((resolve) => stream.once('close', resolve));
    expect(openFiles()).toBe(before);
  });
});
