import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { jsonBody } from '../../src/core/body/json.js';
import { multipartBody } from '../../src/core/body/multipart.js';
import type { PlannedFile } from '../../src/core/plan.js';
import { tempDir } from '../helpers.js';

async function planned(dir: string, name: string, data: Buffer, extra: Partial<PlannedFile> = {}): Promise<PlannedFile> {
  const absPath = join(dir, name);
  await writeFile(absPath, data);
  return { path: name, absPath, name, entityId: 'e', mediaTypeSource: 'none', bytes: data.length, contentType: 'image/png', ...extra };
}

describe('JSON body', () => {
  it('streams every file as padded base64 and announces its exact length', async () => {
    const dir = await tempDir();
    // Sizes around the read size and its remainders mod 3 exercise the carried bytes.
    const sizes = [1, 2, 3, 196_607, 196_608, 196_609, 500_001];
    const files = await Promise.all(
      sizes.map((n, i) => planned(dir, `f${i}.png`, Buffer.from(Array.from({ length: n }, (_, j) => (j * 7 + i) % 256)))),
    );
    files[0]!.mediaType = 'IMAGE_FACE_IMAGE';
    files[1]!.customData = { note: 'é"\n' };
    const body = jsonBody(files);
    const raw = await text(body.body);
    expect(Buffer.byteLength(raw)).toBe(body.length);
    expect(body.headers['content-length']).toBe(String(body.length));
    const parsed = JSON.parse(raw) as Array<Record<string, unknown>>;
    expect(parsed).toHaveLength(sizes.length);
    parsed.forEach((item, i) => {
      expect(Buffer.from(item.media as string, 'base64').length).toBe(sizes[i]);
      expect(item.name).toBe(`f${i}.png`);
    });
    expect(parsed[0]).toMatchObject({ media_type: 'IMAGE_FACE_IMAGE' });
    expect(parsed[0]).not.toHaveProperty('custom_data');
    expect(parsed[1]).toMatchObject({ custom_data: { note: 'é"\n' } });
    expect(parsed[1]).not.toHaveProperty('media_type');
  });
});

describe('multipart body', () => {
  it('announces its exact length and puts the metadata part under the file field', async () => {
    const dir = await tempDir();
    const file = await planned(dir, 'selfie.png', Buffer.from('png-bytes'), { mediaType: 'IMAGE_FACE_IMAGE', customData: { a: 1 } });
    const body = multipartBody([file]);
    const raw = await text(body.body);
    expect(Buffer.byteLength(raw)).toBe(body.length);
    expect(raw).toContain('name="file_1"; filename="selfie.png"');
    expect(raw).toContain('{"media_type":"IMAGE_FACE_IMAGE","a":1}');
  });
});
