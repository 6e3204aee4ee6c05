import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, upload, type UploadEvent, type UploadOptions } from '../../src/index.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, fixtureCopy, sha256, tempDir, validContent, validContentOfSize } from '../helpers.js';

/** What each fixture must arrive as: media_type and custom_data. */
const EXPECTED: Record<
  string,
  { mediaType: string | null; customData: Record<string, unknown> | null; contentType: string }
> = {
  'analyst_note.txt': { mediaType: null, customData: null, contentType: 'text/plain' },
  'drivers_license_back.png': { mediaType: 'IMAGE_DRIVERS_LICENSE_BACK', customData: null, contentType: 'image/png' },
  'drivers_license_front.png': { mediaType: 'IMAGE_DRIVERS_LICENSE_FRONT', customData: null, contentType: 'image/png' },
  'id_card_back.jpg': { mediaType: 'IMAGE_ID_CARD_BACK', customData: null, contentType: 'image/jpeg' },
  'id_card_front.jpg': { mediaType: 'IMAGE_ID_CARD_FRONT', customData: null, contentType: 'image/jpeg' },
  'liveness_video.mp4': { mediaType: null, customData: null, contentType: 'video/mp4' },
  'passport_front.jpg': {
    mediaType: 'IMAGE_PASSPORT_FRONT',
    customData: { source: 'onfido', document_country: 'GB', document_number_last4: '4821' },
    contentType: 'image/jpeg',
  },
  'profile_picture.png': {
    mediaType: 'IMAGE_PROFILE_PICTURE',
    customData: { source: 'signup_form' },
    contentType: 'image/png',
  },
  'proof_of_address.pdf': {
    mediaType: null,
    customData: { document: 'utility_bill', issued: '2026-09-30', reviewed_by: 'kyc-team' },
    contentType: 'application/pdf',
  },
  'selfie.jpg': { mediaType: 'IMAGE_FACE_IMAGE', customData: null, contentType: 'image/jpeg' },
};

async function sandbox(options: Parameters<typeof startSandbox>[0] = {}): Promise<Sandbox> {
  return closeAfter(await startSandbox(options));
}

function optionsFor(
  server: Sandbox,
  extra: Partial<UploadOptions> & { paths: string[] },
): UploadOptions & { events: UploadEvent[] } {
  const events: UploadEvent[] = [];
  return {
    entity: 'cust-1',
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    concurrency: 4,
    onEvent: (e) => events.push(e),
    events,
    ...extra,
  };
}

describe.each(['multipart', 'json'] as const)('upload() in %s format', (format) => {
  it('stores every fixture once with identical bytes, name, media_type and custom data', async () => {
    const server = await sandbox();
    const options = optionsFor(server, { paths: [FIXTURES], format });
    const summary = await upload(options);

    const names = Object.keys(EXPECTED).sort();
    expect(server.stored.map((m) => m.name).sort()).toEqual(names);
    for (const media of server.stored) {
      const expected = EXPECTED[media.name]!;
      expect(media.sha256, media.name).toBe(await sha256(join(FIXTURES, media.name)));
      expect(media.objectId).toBe('cust-1');
      expect(media.mediaType, media.name).toBe(expected.mediaType);
      expect(media.customData, media.name).toEqual(expected.customData);
      expect(media.format).toBe(format);
      if (format === 'multipart') expect(media.contentType, media.name).toBe(expected.contentType);
    }
    expect(summary).toMatchObject({ total: 10, uploaded: 10, failed: 0, skipped: 0, not_sent: 0 });
    expect(options.events.filter((e) => e.event === 'uploaded')).toHaveLength(10);
    // Every media_type of the fixtures is one Unit21 recognises.
    expect(options.events.filter((e) => e.event === 'warning')).toEqual([]);
  });

  it('sends an entity id with / # ? space @ as one path segment that arrives intact', async () => {
    const id = 'cust/42#a?b c@d%e+f';
    const server = await sandbox({ entities: [id] });
    const summary = await upload(optionsFor(server, { paths: [join(FIXTURES, 'selfie.jpg')], entity: id, format }));
    expect(summary.uploaded).toBe(1);
    expect(server.stored.map((m) => m.objectId)).toEqual([id]);
  });
});

describe('upload() outcomes', () => {
  it('fails a file with a failed event when the entity does not exist, and carries on', async () => {
    const server = await sandbox({ entities: ['someone-else'] });
    const options = optionsFor(server, { paths: [join(FIXTURES, 'selfie.jpg'), join(FIXTURES, 'passport_front.jpg')] });
    const summary = await upload(options);
    expect(summary).toMatchObject({ uploaded: 0, failed: 2, not_sent: 0 });
    expect(options.events).toContainEqual(
      expect.objectContaining({
        event: 'failed',
        path: join(FIXTURES, 'selfie.jpg'),
        entity_id: 'cust-1',
        status: 404,
        error_code: 'resource_not_found',
      }),
    );
    expect(server.stored).toHaveLength(0);
  });

  it('stops the whole run when the key is refused, sending at most one request per slot', async () => {
    const server = await sandbox();
    const options = optionsFor(server, { paths: [FIXTURES], apiKey: 'wrong-key', concurrency: 2 });
    const summary = await upload(options);
    expect(summary.stopped).toBe('auth');
    expect(server.requests.length).toBeLessThanOrEqual(2);
    // Every file of the folder ends exactly once, and the summary counts each end.
    const ends = options.events.filter((e) => e.event === 'uploaded' || e.event === 'failed' || e.event === 'skipped');
    const names = ends.map((e) => basename((e as { path: string }).path)).sort();
    expect(names).toEqual(
      readdirSync(FIXTURES)
        .filter((name) => !name.endsWith('.json'))
        .sort(),
    );
    expect(summary.total).toBe(ends.length);
    expect(summary.not_sent).toBeGreaterThanOrEqual(8);
    expect(options.events).toContainEqual(expect.objectContaining({ event: 'failed', status: 401 }));
    expect(JSON.stringify(options.events)).not.toContain('wrong-key');
  });

  it('skips dot-files, sidecars, node_modules and unsupported files found by a walk', async () => {
    const dir = await fixtureCopy();
    await writeFile(join(dir, '.DS_Store'), 'x');
    await writeFile(join(dir, 'contract.docx'), 'x');
    await mkdir(join(dir, 'node_modules', 'pkg'), { recursive: true });
    await writeFile(join(dir, 'node_modules', 'pkg', 'logo.png'), 'x');
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, '.git', 'selfie.jpg'), 'x');
    const server = await sandbox();
    const options = optionsFor(server, { paths: [dir] });
    const summary = await upload(options);
    expect(summary).toMatchObject({ total: 11, uploaded: 10, skipped: 1 });
    expect(options.events).toContainEqual(
      expect.objectContaining({ event: 'skipped', path: join(dir, 'contract.docx'), reason: 'unsupported' }),
    );
    expect(server.stored.map((m) => m.name)).not.toContain('logo.png');
  });

  it('expands glob patterns relative to cwd and sends a file found twice only once', async () => {
    const dir = await fixtureCopy();
    const server = await sandbox();
    const summary = await upload(
      optionsFor(server, { paths: ['*.png', 'drivers_license_front.png', '**/*.pdf'], cwd: dir }),
    );
    expect(summary.uploaded).toBe(4);
    expect(server.stored.map((m) => m.name).sort()).toEqual([
      'drivers_license_back.png',
      'drivers_license_front.png',
      'profile_picture.png',
      'proof_of_address.pdf',
    ]);
  });

  it('writes a relative journal and report in cwd, where it locks the journal, and a rerun there skips what is stored', async () => {
    const dir = await fixtureCopy();
    const server = await sandbox();
    const paths = ['selfie.jpg', 'proof_of_address.pdf'];
    const first = await upload(optionsFor(server, { paths, cwd: dir, journal: 'run.jsonl', report: 'run.csv' }));
    expect(first).toMatchObject({ uploaded: 2, journal: join(dir, 'run.jsonl') });
    const written = await readdir(dir);
    expect(written).toEqual(expect.arrayContaining(['run.jsonl', 'run.csv']));
    const second = await upload(optionsFor(server, { paths, cwd: dir, journal: 'run.jsonl' }));
    expect(second).toMatchObject({ uploaded: 0, skipped: 2 });
    expect(server.stored).toHaveLength(2);
  });

  it('takes journal: false beside a report', async () => {
    const dir = await fixtureCopy();
    const server = await sandbox();
    const summary = await upload(
      optionsFor(server, { paths: ['selfie.jpg'], cwd: dir, journal: false, report: 'run.json' }),
    );
    expect(summary).toMatchObject({ uploaded: 1, journal: null });
    expect(await readdir(dir)).toContain('run.json');
  });

  it('uses --media-type for files without a sidecar one, and the sidecar wins', async () => {
    const server = await sandbox();
    await upload(
      optionsFor(server, {
        paths: [join(FIXTURES, 'selfie.jpg'), join(FIXTURES, 'profile_picture.png')],
        mediaType: 'IMAGE_ID_CARD_FRONT',
      }),
    );
    const byName = Object.fromEntries(server.stored.map((m) => [m.name, m.mediaType]));
    expect(byName).toEqual({ 'selfie.jpg': 'IMAGE_ID_CARD_FRONT', 'profile_picture.png': 'IMAGE_PROFILE_PICTURE' });
  });

  it('sends no media_type with infer off and none given', async () => {
    const server = await sandbox();
    await upload(optionsFor(server, { paths: [join(FIXTURES, 'selfie.jpg')], infer: false }));
    expect(server.stored[0]?.mediaType).toBeNull();
  });
});

describe('preflight', () => {
  /** Writes a broken input beside a good file; expects InputError naming it, and no request. */
  async function expectRefused(setup: (dir: string) => Promise<string[]>, message: RegExp) {
    const dir = await tempDir();
    await writeFile(join(dir, 'selfie.jpg'), validContent('selfie.jpg', 'jpeg'));
    const paths = await setup(dir);
    const server = await sandbox();
    const error = await upload(optionsFor(server, { paths: [join(dir, 'selfie.jpg'), ...paths], cwd: dir })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    const problems = (error as InputError).problems;
    expect(problems.map((p) => `${p.path}: ${p.message}`).join('\n')).toMatch(message);
    expect(server.requests).toHaveLength(0);
    return problems;
  }

  it('refuses an explicit file with an unsupported extension', async () => {
    await expectRefused(async (dir) => {
      await writeFile(join(dir, 'x.docx'), 'x');
      return [join(dir, 'x.docx')];
    }, /x\.docx: \.docx is not a file type/);
  });

  it('refuses a file over the size limit', async () => {
    await expectRefused(async (dir) => {
      await writeFile(join(dir, 'big.png'), Buffer.alloc(5_000_001));
      return [join(dir, 'big.png')];
    }, /big\.png: file is 5000001 bytes, over the limit of 5000000/);
  });

  it('accepts a file of exactly the limit', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'edge.png'), validContentOfSize('edge.png', 1000, 1));
    const server = await sandbox();
    const summary = await upload(optionsFor(server, { paths: [join(dir, 'edge.png')], maxFileSize: 1000 }));
    expect(summary.uploaded).toBe(1);
  });

  it('refuses a 0-byte file, also when found by a walk', async () => {
    await expectRefused(async (dir) => {
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'sub', 'empty.pdf'), '');
      return [join(dir, 'sub')];
    }, /empty\.pdf: file is empty/);
  });

  it('refuses a missing file and a pattern that matches nothing', async () => {
    const problems = await expectRefused(
      () => Promise.resolve(['missing.jpg', 'scans/*.png']),
      /missing\.jpg: no such file/,
    );
    expect(problems.map((p) => p.path)).toContain('scans/*.png');
  });

  it('refuses something that is not a regular file', async () => {
    await expectRefused(async (dir) => {
      const { execFileSync } = await import('node:child_process');
      execFileSync('mkfifo', [join(dir, 'pipe.png')]);
      return [join(dir, 'pipe.png')];
    }, /pipe\.png: not a regular file/);
  });

  it.skipIf(process.getuid?.() === 0)('refuses an unreadable file', async () => {
    await expectRefused(async (dir) => {
      await writeFile(join(dir, 'locked.png'), 'x', { mode: 0o000 });
      return [join(dir, 'locked.png')];
    }, /locked\.png: cannot read it/);
  });

  it.each([
    ['{not json', /selfie\.jpg\.json: sidecar is not valid JSON/],
    ['[1,2]', /selfie\.jpg\.json: sidecar must hold a JSON object/],
    ['{"media_type": 5}', /selfie\.jpg\.json: sidecar "media_type" must be/],
  ])('refuses a bad sidecar %s, naming the sidecar', async (text, message) => {
    await expectRefused(async (dir) => {
      await writeFile(join(dir, 'selfie.jpg.json'), text);
      return [];
    }, message);
  });

  it('refuses an empty or over-long entity id before reading any file', async () => {
    const server = await sandbox();
    await expect(upload(optionsFor(server, { paths: [FIXTURES], entity: '' }))).rejects.toThrow(/entity id is empty/);
    await expect(upload(optionsFor(server, { paths: [FIXTURES], entity: 'x'.repeat(129) }))).rejects.toThrow(
      /129 characters/,
    );
    expect(server.requests).toHaveLength(0);
  });

  it('with skipInvalid, uploads the valid files and reports the rest as skipped invalid', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'selfie.jpg'), validContent('selfie.jpg', 'jpeg'));
    await writeFile(join(dir, 'empty.png'), '');
    const server = await sandbox();
    const options = optionsFor(server, { paths: [dir], skipInvalid: true });
    const summary = await upload(options);
    expect(summary).toMatchObject({ uploaded: 1, skipped: 1, invalid: 1 });
    expect(options.events).toContainEqual(
      expect.objectContaining({ event: 'skipped', reason: 'invalid', path: join(dir, 'empty.png') }),
    );
    expect((await readdir(dir)).length).toBe(2);
  });
});
