import { describe, expect, it } from 'vitest';
import { FormData, fetch } from 'undici';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../src/core/shared/errors.js';
import { SAMPLES_DIR, writeSamples } from '../../src/sandbox/samples.js';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, tempDir } from '../helpers.js';

const PNG = Buffer.from('89504e470d0a1a0a', 'hex');

async function sandbox(options: SandboxOptions = { entities: ['cust-1'] }): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey: 'k', org: 'acme', ...options }));
}

async function put(
  server: Sandbox,
  path: string,
  init: { body?: string | FormData; headers?: Record<string, string>; method?: string },
) {
  const response = await fetch(`${server.url}${path}`, {
    method: init.method ?? 'PUT',
    headers: { 'u21-key': 'k', ...init.headers },
    ...(init.body !== undefined && { body: init.body }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const ENTITY = '/v1/acme/entities/cust-1/link-media';
const json = (items: unknown) => ({ body: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
const item = (extra: Record<string, unknown> = {}) => ({ media: PNG.toString('base64'), name: 'a.png', ...extra });

describe('sandbox: what it accepts', () => {
  it('stores a JSON item and answers 200 {}', async () => {
    const server = await sandbox();
    const res = await put(server, ENTITY, json([item({ media_type: 'IMAGE_FACE_IMAGE', custom_data: { a: 1 } })]));
    expect(res).toEqual({ status: 200, body: {} });
    expect(server.stored[0]).toMatchObject({
      objectId: 'cust-1',
      name: 'a.png',
      mediaType: 'IMAGE_FACE_IMAGE',
      customData: { a: 1 },
      bytes: 8,
      format: 'json',
    });
  });

  it('stores multipart files with their metadata parts', async () => {
    const server = await sandbox();
    const form = new FormData();
    form.append('document_front', new Blob([PNG], { type: 'image/png' }), 'front.png');
    form.append('document_front', JSON.stringify({ media_type: 'IMAGE_ID_CARD_FRONT', source: 'app' }));
    form.append('selfie', new Blob([PNG]), 'me.jpg');
    const res = await put(server, ENTITY, { body: form });
    expect(res.status).toBe(200);
    expect(server.stored.map((m) => [m.name, m.mediaType, m.customData])).toEqual([
      ['front.png', 'IMAGE_ID_CARD_FRONT', { source: 'app' }],
      ['me.jpg', null, null],
    ]);
  });
});

describe('sandbox: what it refuses', () => {
  it.each([
    ['no key', { headers: { 'u21-key': '' } }, ENTITY, 401],
    ['another org', json([item()]), '/v1/other/entities/cust-1/link-media', 403],
    ['an unknown entity', json([item()]), '/v1/acme/entities/ghost/link-media', 404],
    ['the old unit21_id route', json([item()]), '/v1/entities/cust-1/link-media', 404],
    ['GET', { method: 'GET' }, ENTITY, 405],
  ])('%s', async (_name, init, path, status) => {
    const server = await sandbox();
    const res = await put(server, path, init);
    expect(res.status).toBe(status);
    expect(typeof res.body.error_code).toBe('string');
    expect(server.stored).toHaveLength(0);
  });

  it.each([
    ['invalid JSON', { body: '{', headers: { 'content-type': 'application/json' } }, /not valid JSON/],
    ['an object instead of an array', json(item()), /JSON array/],
    ['an empty array', json([]), /no media/],
    ['a missing media', json([{ name: 'a.png' }]), /"media" is required/],
    [
      'a data: prefix',
      json([item({ media: `data:image/png;base64,${PNG.toString('base64')}` })]),
      /not standard padded base64/,
    ],
    ['line breaks in base64', json([item({ media: 'iVBORw0K\nGgo=' })]), /not standard padded base64/],
    ['unpadded base64', json([item({ media: 'iVBORw0KGgo' })]), /not standard padded base64/],
    ['a name without extension', json([item({ name: 'scan' })]), /has no extension/],
    ['an unsupported type', json([item({ name: 'a.docx' })]), /not supported/],
    [
      'a file over 5 MB',
      json([item({ media: Buffer.alloc(5_000_001).toString('base64') })]),
      /over the 5000000-byte limit/,
    ],
    ['custom_data not an object', json([item({ custom_data: 'x' })]), /"custom_data" must be an object/],
    [
      'an unsupported Content-Type',
      { body: 'x', headers: { 'content-type': 'text/plain' } },
      /unsupported Content-Type/,
    ],
  ])('400 for %s (JSON)', async (_name, init, message) => {
    const server = await sandbox();
    const res = await put(server, ENTITY, init);
    expect(res.status).toBe(400);
    expect(res.body.error_code).toBe('invalid_request');
    expect(res.body.message).toMatch(message);
    expect(server.stored).toHaveLength(0);
  });

  const form = (build: (f: FormData) => void) => {
    const f = new FormData();
    build(f);
    return { body: f };
  };
  it.each([
    ['no file part', form((f) => f.append('x', '{}')), /expected exactly one file part/],
    [
      'a bad field name',
      form((f) => f.append('doc-front', new Blob([PNG]), 'a.png')),
      /letters, digits and underscores/,
    ],
    [
      'metadata that is not JSON',
      form((f) => (f.append('d', new Blob([PNG]), 'a.png'), f.append('d', 'nope'))),
      /not valid JSON/,
    ],
    [
      'metadata that is an array',
      form((f) => (f.append('d', new Blob([PNG]), 'a.png'), f.append('d', '[1]'))),
      /must be a JSON object/,
    ],
    [
      'two files under one field',
      form((f) => (f.append('d', new Blob([PNG]), 'a.png'), f.append('d', new Blob([PNG]), 'b.png'))),
      /exactly one file part, got 2/,
    ],
    ['an empty file', form((f) => f.append('d', new Blob([]), 'a.png')), /file is empty/],
    ['an unsupported type', form((f) => f.append('d', new Blob([PNG]), 'a.exe')), /not supported/],
  ])('400 for %s (multipart)', async (_name, init, message) => {
    const server = await sandbox();
    const res = await put(server, ENTITY, init);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
    expect(server.stored).toHaveLength(0);
  });

  it('requires media_type on event media', async () => {
    const server = await sandbox();
    const path = '/v1/acme/events/evt-1/link-media';
    expect((await put(server, path, json([item()]))).status).toBe(400);
    expect((await put(server, path, json([item({ media_type: 'IMAGE_CHECK_FRONT' })]))).status).toBe(200);
    expect(server.stored[0]).toMatchObject({ objectType: 'events', objectId: 'evt-1' });
  });
});

describe('sandbox: objects that do not exist, a revoked key', () => {
  it.each([
    ['an entity', '/v1/acme/entities/ghost/link-media', 'entity "ghost" not found'],
    ['an event', '/v1/acme/events/ghost/link-media', 'event "ghost" not found'],
    ['an alert', '/v1/alerts/ghost/link-media', 'alert "ghost" not found'],
    ['a case', '/v1/cases/ghost/link-media', 'case "ghost" not found'],
  ])(
    'answers 404 resource_not_found for %s named missing, and takes media for the others',
    async (_name, path, message) => {
      const server = await sandbox({ missing: ['ghost'] });
      const media = json([item({ media_type: 'IMAGE_CHECK_FRONT' })]);
      expect(await put(server, path, media)).toEqual({
        status: 404,
        body: { error_code: 'resource_not_found', message },
      });
      expect((await put(server, path.replace('ghost', 'real'), media)).status).toBe(200);
      expect(server.stored.map((m) => m.objectId)).toEqual(['real']);
    },
  );

  it('reads a missing entity back as 404', async () => {
    const server = await sandbox({ missing: ['ghost'] });
    expect((await put(server, '/v1/acme/entities/ghost', { method: 'GET' })).status).toBe(404);
    expect((await put(server, '/v1/acme/entities/real', { method: 'GET' })).status).toBe(200);
  });

  it('accepts the key for the first n requests, then answers 401 to every one', async () => {
    const server = await sandbox({ revokeKeyAfter: 2 });
    const statuses = [];
    for (let n = 0; n < 4; n++) statuses.push((await put(server, ENTITY, json([item()]))).status);
    expect(statuses).toEqual([200, 200, 401, 401]);
    expect((await put(server, ENTITY, json([item()]))).body).toEqual({
      error_code: 'unauthorized',
      message: 'this key has been revoked',
    });
    expect(server.stored).toHaveLength(2);
  });

  it('refuses the key from the start with a revokeKeyAfter of 0', async () => {
    const server = await sandbox({ revokeKeyAfter: 0 });
    expect((await put(server, ENTITY, json([item()]))).status).toBe(401);
    expect(server.stored).toHaveLength(0);
  });
});

describe('sandbox samples', () => {
  it('writes the shipped samples (fixtures/), and can write them to the same folder again', async () => {
    const folder = join(await tempDir(), 'new', 'samples');
    await writeSamples(folder);
    await writeSamples(folder);
    const names = await readdir(folder);
    expect(names.sort()).toEqual((await readdir(FIXTURES)).sort());
    expect(SAMPLES_DIR.replace(/\/$/, '')).toBe(FIXTURES);
    for (const name of names) expect(await readFile(join(folder, name))).toEqual(await readFile(join(FIXTURES, name)));
  });

  it("refuses a folder holding another file of a sample's name, and writes nothing there", async () => {
    const folder = await tempDir();
    await writeFile(join(folder, 'selfie.jpg'), 'my own selfie');
    const error = await writeSamples(folder).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe(
      `--samples: ${join(folder, 'selfie.jpg')} already exists and is not the sample of that name`,
    );
    expect(await readdir(folder)).toEqual(['selfie.jpg']);
    expect(await readFile(join(folder, 'selfie.jpg'), 'utf8')).toBe('my own selfie');
  });

  it('refuses a folder it cannot make, naming it', async () => {
    const file = join(await tempDir(), 'a-file');
    await writeFile(file, '');
    await expect(writeSamples(join(file, 'samples'))).rejects.toThrow(
      `--samples: cannot write the samples to ${join(file, 'samples')} (ENOTDIR)`,
    );
  });
});
