import { createHash } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readReport } from '../../src/core/inputs/report-format.js';
import { startSandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, of, ROOT, runBin, tempDir } from '../helpers.js';
import { faultyS3, s3Env, startS3, target, type TestS3 } from '../s3-server.js';

const KEY = 'sk-s3-inputs-5e0b71';
const EVIDENCE = join(ROOT, 'test', 'fixtures', 'evidence');
const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** S3's (and s3rver's) ETag of an object put in one piece: the MD5 of its bytes. */
const md5 = (bytes: Buffer | string) => createHash('md5').update(bytes).digest('hex');

const sandbox = (options: { dir?: string; port?: number; faults?: { seed: number; error500: number } } = {}) =>
  startSandbox({ apiKey: KEY, org: 'acme', ...options });

/** The fixtures (sidecars included) under kyc/2024/<entity>/ for two entities, as an export's bucket holds them. */
async function seeded(): Promise<{ s3: TestS3; objects: Map<string, Buffer> }> {
  const s3 = await startS3(['kyc']);
  const objects = new Map<string, Buffer>();
  for (const name of [
    'passport_front.jpg',
    'passport_front.jpg.json',
    'selfie.jpg',
    'proof_of_address.pdf',
    'id_card_back.jpg',
    'drivers_license_front.png',
  ]) {
    const bytes = await readFile(join(FIXTURES, name));
    for (const entity of ['cust-1', 'cust-2']) {
      await s3.put('kyc', `2024/${entity}/${name}`, bytes);
      objects.set(`s3://kyc/2024/${entity}/${name}`, bytes);
    }
  }
  return { s3, objects };
}

/** A loopback proxy in front of a test S3 server that answers as a versioned bucket does: every object's HEAD and GET say its version. */
async function versioned(target: string, version: string): Promise<string> {
  const server = createServer((req, res) => {
    const upstream = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, {
        ...answer.headers,
        ...(answer.statusCode! < 300 && req.method !== 'PUT' && { 'x-amz-version-id': version }),
      });
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closeAfter({
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('s3:// URLs in manifests and reports given back (built binary, real S3 server and sandbox)', () => {
  it.each(['csv', 'jsonl'] as const)(
    "sends the object each %s row names to its entity, the row's metadata over its sidecar's, and reports its URL and ETag",
    async (format) => {
      const { s3, objects } = await seeded();
      const server = closeAfter(await sandbox());
      const cwd = await tempDir();
      const rows = [
        { path: 's3://kyc/2024/cust-1/passport_front.jpg', entity_id: 'ent-a', custom_data: { source: 'manifest' } },
        { path: 's3://kyc/2024/cust-2/proof_of_address.pdf', entity_id: 'ent-b', media_type: 'OTHER' },
      ];
      await writeFile(
        join(cwd, 'local.pdf'),
        objects.get('s3://kyc/2024/cust-1/proof_of_address.pdf')!.toString('latin1').replace('%%EOF', '% local\n%%EOF'),
        'latin1',
      );
      const local = { path: 'local.pdf', entity_id: 'ent-a' };
      const manifest = `manifest.${format}`;
      const text =
        format === 'csv'
          ? `path,entity_id,media_type,custom_data\n${[...rows, local].map((r) => [r.path, r.entity_id, 'media_type' in r ? r.media_type : '', 'custom_data' in r ? `"${JSON.stringify(r.custom_data).replace(/"/g, '""')}"` : ''].join(',')).join('\n')}\n`
          : `${[...rows, local].map((r) => JSON.stringify(r)).join('\n')}\n`;
      await writeFile(join(cwd, manifest), text);

      const result = await runBin(['upload', '--manifest', manifest, ...target(server), '--report', 'report.csv'], {
        cwd,
        env: { ...s3.env, U21_API_KEY: KEY },
      });
      expect(result.code, result.stderr).toBe(0);
      expect(
        of(result.events, 'uploaded')
          .map((e) => e.path)
          .sort(),
      ).toEqual(['local.pdf', ...rows.map((r) => r.path)].sort());
      const stored = server.stored
        .map((m) => ({
          entity: m.objectId,
          name: m.name,
          sha256: m.sha256,
          mediaType: m.mediaType,
          customData: m.customData,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      expect(stored).toEqual([
        {
          entity: 'ent-a',
          name: 'local.pdf',
          sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
          mediaType: null,
          customData: null,
        },
        // The object's sidecar (s3://…/passport_front.jpg.json) applies; the row's custom_data keys win.
        {
          entity: 'ent-a',
          name: 'passport_front.jpg',
          sha256: sha(objects.get(rows[0]!.path)!),
          mediaType: 'IMAGE_PASSPORT_FRONT',
          customData: { source: 'manifest', document_country: 'GB', document_number_last4: '4821' },
        },
        {
          entity: 'ent-b',
          name: 'proof_of_address.pdf',
          sha256: sha(objects.get(rows[1]!.path)!),
          mediaType: 'OTHER',
          customData: null,
        },
      ]);

      // The report names each object by its URL, and the version sent by its ETag; a local file has none.
      const csv = await readFile(join(cwd, 'report.csv'), 'utf8');
      expect(csv.split('\n')[0]).toMatch(/,possibly_duplicated,object,etag,version_id$/);
      const report = await readReport(join(cwd, 'report.csv'));
      for (const row of rows)
        expect(report.find((r) => r.path === row.path)).toMatchObject({
          abs_path: row.path,
          outcome: 'uploaded',
          etag: md5(objects.get(row.path)!),
          version_id: null,
        });
      expect(report.find((r) => r.path === 'local.pdf')).not.toHaveProperty('etag');
    },
  );

  it('refuses a row naming a key that does not exist: the row and the fix, exit 2, nothing sent', async () => {
    const { s3 } = await seeded();
    const server = closeAfter(await sandbox());
    const cwd = await tempDir();
    await writeFile(
      join(cwd, 'manifest.csv'),
      'path,entity_id\ns3://kyc/2024/cust-1/selfie.jpg,ent-a\ns3://kyc/2024/cust-1/Selfie.JPG,ent-a\ns3://kyc/2024/,ent-a\n',
    );
    const result = await runBin(
      ['upload', '--manifest', 'manifest.csv', ...target(server).filter((a) => a !== '--json')],
      {
        cwd,
        env: { ...s3.env, U21_API_KEY: KEY },
      },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'manifest.csv:3: s3://kyc/2024/cust-1/Selfie.JPG: no such object; check the bucket and key (keys are case-sensitive)',
    );
    expect(result.stderr).toContain(
      'manifest.csv:4: "path" names a bucket or a prefix, not an object; a row names one object by its full key (s3://bucket/key)',
    );
    expect(server.requests).toHaveLength(0);
  });

  it('refuses an object named .jpg that holds text, as a file on disk: exit 2, nothing sent; --skip-invalid sends the rest', async () => {
    const { s3, objects } = await seeded();
    await s3.put('kyc', '2024/cust-1/placeholder.jpg', 'Access denied');
    const server = closeAfter(await sandbox());
    const cwd = await tempDir();
    const args = ['upload', 's3://kyc/2024/', '--entity-from', 'dir', ...target(server)];
    const refused = await runBin(args, { cwd, env: { ...s3.env, U21_API_KEY: KEY } });
    expect(refused.code).toBe(2);
    expect(of(refused.events, 'error')[0]).toMatchObject({
      problems: [
        {
          path: 's3://kyc/2024/cust-1/placeholder.jpg',
          message:
            'does not start as a JPEG image does (it holds text); fetch the original again, or pass --no-sniff to send it as it is',
        },
      ],
    });
    expect(server.requests).toHaveLength(0);

    const skipping = await runBin([...args, '--skip-invalid'], { cwd, env: { ...s3.env, U21_API_KEY: KEY } });
    expect(skipping.code).toBe(1);
    expect(of(skipping.events, 'skipped').map((e) => [e.path, e.reason])).toEqual([
      ['s3://kyc/2024/cust-1/placeholder.jpg', 'invalid'],
    ]);
    const sent = [...objects].filter(([url]) => !url.endsWith('.json'));
    expect(server.stored.map((m) => [m.objectId, m.name, m.sha256]).sort()).toEqual(
      sent.map(([url, bytes]) => [url.split('/')[4], url.split('/').pop(), sha(bytes)]).sort(),
    );
  });

  it.each(['csv', 'json'] as const)(
    '--retry-failed with a %s report sends the failed objects again from the bucket, and nothing else',
    async (format) => {
      const { s3, objects } = await seeded();
      const first = await sandbox({ faults: { seed: 5, error500: 0.4 } });
      const port = Number(new URL(first.url).port);
      const cwd = await tempDir();
      const report = `report.${format}`;
      const run = await runBin(
        [
          'upload',
          's3://kyc/2024/',
          '--entity-from',
          'dir',
          ...target(first),
          '--retries',
          '0',
          '--batch',
          '1',
          '--report',
          report,
        ],
        { cwd, env: { ...s3.env, U21_API_KEY: KEY } },
      );
      await first.close();
      expect(run.code).toBe(1);
      const rows = await readReport(join(cwd, report));
      const failed = rows.filter((r) => r.outcome === 'failed');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.length).toBeLessThan(10);
      for (const row of rows) expect(row).toMatchObject({ abs_path: row.path, etag: md5(objects.get(row.path)!) });

      const second = closeAfter(await sandbox({ port }));
      const retry = await runBin(['upload', '--retry-failed', report, ...target(second)], {
        cwd,
        env: { ...s3.env, U21_API_KEY: KEY },
      });
      expect(retry.code, retry.stderr).toBe(0);
      expect(second.stored.map((m) => [m.objectId, m.name, m.sha256]).sort()).toEqual(
        failed.map((r) => [r.entity_id, r.name, sha(objects.get(r.path)!)]).sort(),
      );
      // The same report given as a manifest: every object it names, each to its entity (a dry run).
      const all = await runBin(['upload', '--manifest', report, ...target(second), '--dry-run'], { cwd, env: s3.env });
      expect(all.code).toBe(0);
      expect(
        of(all.events, 'planned')
          .map((e) => [e.path, e.entity_id])
          .sort(),
      ).toEqual(rows.map((r) => [r.path, r.entity_id]).sort());
    },
  );
});

describe('the version of each object sent, in a versioned bucket (built binary)', () => {
  it('reports the VersionId its HEAD (a manifest row) or its GET (a listing) answered with', async () => {
    const { s3 } = await seeded();
    const env = { ...s3Env(await versioned(s3.endpoint, 'v3.Wq9-oxz')), U21_API_KEY: KEY };
    const server = closeAfter(await sandbox());
    const cwd = await tempDir();
    await writeFile(join(cwd, 'manifest.csv'), 'path,entity_id\ns3://kyc/2024/cust-1/selfie.jpg,ent-a\n');
    const listed = await runBin(
      ['upload', 's3://kyc/2024/cust-2/', '--entity', 'ent-b', ...target(server), '--report', 'listed.json'],
      { cwd, env },
    );
    const named = await runBin(['upload', '--manifest', 'manifest.csv', ...target(server), '--report', 'named.csv'], {
      cwd,
      env,
    });
    expect([listed.code, named.code]).toEqual([0, 0]);
    const rows = [...(await readReport(join(cwd, 'listed.json'))), ...(await readReport(join(cwd, 'named.csv')))];
    expect(rows).toHaveLength(6);
    for (const row of rows)
      expect(row).toMatchObject({
        outcome: 'uploaded',
        etag: expect.stringMatching(/^[0-9a-f]{32}$/),
        version_id: 'v3.Wq9-oxz',
      });
  });
});

describe('--shard on objects (built binary, real S3 server)', () => {
  it('splits a prefix into shards that hold every object exactly once, as the same tree on disk splits', async () => {
    const s3 = await startS3(['kyc']);
    const disk = join(await tempDir(), '2024');
    const urls: string[] = [];
    for (let c = 0; c < 8; c++) {
      for (const name of ['selfie.jpg', 'proof_of_address.pdf', 'id_card_back.jpg']) {
        await s3.put('kyc', `2024/cust-${c}/${name}`, await readFile(join(FIXTURES, name)));
        await mkdir(join(disk, `cust-${c}`), { recursive: true });
        await cp(join(FIXTURES, name), join(disk, `cust-${c}`, name));
        urls.push(`s3://kyc/2024/cust-${c}/${name}`);
      }
    }
    const server = closeAfter(await sandbox());
    const cwd = await tempDir();
    const sent: string[][] = [];
    for (const shard of ['1/2', '2/2']) {
      const before = server.stored.length;
      const result = await runBin(
        ['upload', 's3://kyc/2024/', '--entity-from', 'dir', ...target(server), '--shard', shard],
        { cwd, env: { ...s3.env, U21_API_KEY: KEY } },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.events.at(-1)).toMatchObject({ event: 'summary', shard });
      const paths = of(result.events, 'uploaded').map((e) => e.path as string);
      expect(
        server.stored
          .slice(before)
          .map((m) => `s3://kyc/2024/${m.objectId}/${m.name}`)
          .sort(),
      ).toEqual([...paths].sort());
      sent.push(paths);
      // Decided by the key below the prefix and the entity: the same folder on disk splits the same way.
      const local = await runBin(
        ['upload', disk, '--entity-from', 'dir', ...target(server), '--dry-run', '--shard', shard],
        { cwd, env: { U21_API_KEY: KEY } },
      );
      expect(
        of(local.events, 'planned')
          .map((e) => (e.path as string).slice(disk.length + 1))
          .sort(),
      ).toEqual(paths.map((p) => p.slice('s3://kyc/2024/'.length)).sort());
    }
    const [one, two] = sent as [string[], string[]];
    expect(one.length).toBeGreaterThan(0);
    expect(two.length).toBeGreaterThan(0);
    expect(one.filter((p) => two.includes(p))).toEqual([]);
    expect([...one, ...two].sort()).toEqual([...urls].sort());
    expect(server.stored).toHaveLength(urls.length);
  });
});

describe('--convert, --fit and --strip-location on objects (built binary, real S3 server and sandbox)', () => {
  it('--convert stores a JPEG of a HEIC and a WebP object, the report naming the object, its ETag and both hashes', async () => {
    const s3 = await startS3(['kyc']);
    const heic = await readFile(join(EVIDENCE, 'passport_front.heic'));
    const webp = await readFile(join(EVIDENCE, 'id_card_front.webp'));
    await s3.put('kyc', 'cust-7/passport_front.heic', heic);
    await s3.put('kyc', 'cust-7/id_card_front.webp', webp);
    const store = await tempDir();
    const server = closeAfter(await sandbox({ dir: store }));
    const cwd = await tempDir();
    const refused = await runBin(
      ['upload', 's3://kyc/cust-7/passport_front.heic', '--entity', 'cust-7', ...target(server)],
      { cwd, env: { ...s3.env, U21_API_KEY: KEY } },
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--convert sends it as JPEG');

    const result = await runBin(
      ['upload', 's3://kyc/cust-7/', '--entity-from', 'dir', ...target(server), '--convert', '--report', 'report.json'],
      { cwd, env: { ...s3.env, U21_API_KEY: KEY } },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(server.stored.map((m) => [m.objectId, m.name, m.contentType, m.mediaType]).sort()).toEqual([
      ['cust-7', 'id_card_front.jpg', 'image/jpeg', 'IMAGE_ID_CARD_FRONT'],
      ['cust-7', 'passport_front.jpg', 'image/jpeg', 'IMAGE_PASSPORT_FRONT'],
    ]);
    const jpeg = await readFile(join(store, 'acme', 'cust-7', 'passport_front.jpg'));
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 160, 100]);
    expect((await sharp(await readFile(join(store, 'acme', 'cust-7', 'id_card_front.jpg'))).metadata()).format).toBe(
      'jpeg',
    );
    const url = 's3://kyc/cust-7/passport_front.heic';
    expect(result.events.find((e) => e.path === url)).toMatchObject({
      event: 'uploaded',
      bytes: heic.length,
      sha256: sha(heic),
      sent_name: 'passport_front.jpg',
      sent_bytes: jpeg.length,
      sent_sha256: sha(jpeg),
      changes: ['converted'],
    });
    const rows = (
      JSON.parse(await readFile(join(cwd, 'report.json'), 'utf8')) as Array<Record<string, unknown>>
    ).filter((r) => r.path === url);
    expect(rows).toEqual([
      expect.objectContaining({
        abs_path: url,
        name: 'passport_front.jpg',
        sha256: sha(heic),
        sent_sha256: sha(jpeg),
        changes: ['converted'],
        etag: md5(heic),
        version_id: null,
      }),
    ]);
  });

  it('--fit re-encodes an object over --max-file-size into an upright JPEG that fits', async () => {
    const s3 = await startS3(['kyc']);
    const [w, h] = [1200, 900];
    const pixels = Buffer.alloc(w * h * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
    // Stored 1200×900 with EXIF orientation 6: upright it is 900×1200.
    const photo = await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 100 })
      .toBuffer();
    const limit = Math.floor(photo.length * 0.6);
    await s3.put('kyc', 'cust-7/selfie.jpg', photo);
    const store = await tempDir();
    const server = closeAfter(await sandbox({ dir: store }));
    const args = [
      'upload',
      's3://kyc/cust-7/selfie.jpg',
      '--entity',
      'cust-7',
      ...target(server),
      '--max-file-size',
      String(limit),
    ];
    const cwd = await tempDir();
    const refused = await runBin(args, { cwd, env: { ...s3.env, U21_API_KEY: KEY } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --fit');

    const result = await runBin([...args, '--fit'], { cwd, env: { ...s3.env, U21_API_KEY: KEY } });
    expect(result.code, result.stderr).toBe(0);
    const stored = await readFile(join(store, 'acme', 'cust-7', 'selfie.jpg'));
    expect(stored.length).toBeLessThanOrEqual(limit);
    const meta = await sharp(stored).metadata();
    expect([meta.format, meta.width, meta.height, meta.orientation ?? 1]).toEqual(['jpeg', 900, 1200, 1]);
    expect(result.events.find((e) => e.event === 'uploaded')).toMatchObject({
      path: 's3://kyc/cust-7/selfie.jpg',
      bytes: photo.length,
      sha256: sha(photo),
      sent_bytes: stored.length,
      sent_sha256: sha(stored),
      changes: ['fitted'],
    });
  });

  it('--strip-location takes the GPS out of an object and leaves every other byte as it was', async () => {
    const s3 = await startS3(['kyc']);
    const photo = await sharp(join(EVIDENCE, 'drivers_license_front.jpg'))
      .withExif({
        IFD0: { Artist: 'Examiner-7' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSMapDatum: 'GPSMARK-WGS84' },
      })
      .jpeg()
      .toBuffer();
    expect(photo.toString('latin1')).toContain('GPSMARK-WGS84');
    await s3.put('kyc', 'cust-7/id_card_back.jpg', photo);
    await s3.put('kyc', 'cust-7/selfie.jpg', await readFile(join(FIXTURES, 'selfie.jpg')));
    const store = await tempDir();
    const server = closeAfter(await sandbox({ dir: store }));
    const result = await runBin(
      ['upload', 's3://kyc/cust-7/', '--entity-from', 'dir', ...target(server), '--strip-location'],
      { cwd: await tempDir(), env: { ...s3.env, U21_API_KEY: KEY } },
    );
    expect(result.code, result.stderr).toBe(0);
    const stored = await readFile(join(store, 'acme', 'cust-7', 'id_card_back.jpg'));
    expect(stored.toString('latin1')).not.toContain('GPSMARK-WGS84');
    expect(stored.toString('latin1')).toContain('Examiner-7');
    expect(stored.length).toBe(photo.length);
    const [before, after] = await Promise.all([sharp(photo).raw().toBuffer(), sharp(stored).raw().toBuffer()]);
    expect(after.equals(before)).toBe(true);
    expect(result.events.find((e) => e.path === 's3://kyc/cust-7/id_card_back.jpg')).toMatchObject({
      event: 'uploaded',
      sha256: sha(photo),
      sent_sha256: sha(stored),
      changes: ['location_stripped'],
    });
    // An object without GPS is sent as it is.
    const selfie = result.events.find((e) => e.path === 's3://kyc/cust-7/selfie.jpg')!;
    expect(selfie).toMatchObject({ event: 'uploaded', sha256: sha(await readFile(join(FIXTURES, 'selfie.jpg'))) });
    expect(selfie).not.toHaveProperty('changes');
    expect(server.stored).toHaveLength(2);
  });

  it('--strip-location reads each object whole from its bucket once, and sends one without GPS as it is', async () => {
    const s3 = await startS3(['kyc']);
    // Noise, so each JPEG is well over the check's first 4096 bytes: its whole reads are told apart by their Range.
    const noisy = (seed: number) => {
      const pixels = Buffer.alloc(96 * 96 * 3);
      let state = seed;
      for (let i = 0; i < pixels.length; i++) pixels[i] = (state = (state * 1103515245 + 12345) % 2 ** 31) >> 23;
      return sharp(pixels, { raw: { width: 96, height: 96, channels: 3 } });
    };
    const plain = await noisy(1).jpeg({ quality: 95 }).toBuffer();
    const located = await noisy(2)
      .withExif({ IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSMapDatum: 'GPSMARK-WGS84' } })
      .jpeg({ quality: 95 })
      .toBuffer();
    expect(Math.min(plain.length, located.length)).toBeGreaterThan(4096);
    await s3.put('kyc', 'cust-7/selfie.jpg', plain);
    await s3.put('kyc', 'cust-7/id_card_back.jpg', located);
    const sizes = new Map([
      ['/kyc/cust-7/selfie.jpg', plain.length],
      ['/kyc/cust-7/id_card_back.jpg', located.length],
    ]);
    const wholeGets = new Map<string, number>();
    const proxy = await faultyS3(s3.endpoint, (req) => {
      const key = new URL(req.url!, s3.endpoint).pathname;
      const size = sizes.get(key);
      const whole = req.headers.range === undefined || req.headers.range === `bytes=0-${size! - 1}`;
      if (req.method === 'GET' && size !== undefined && whole) wholeGets.set(key, (wholeGets.get(key) ?? 0) + 1);
      return undefined;
    });
    const store = await tempDir();
    const server = closeAfter(await sandbox({ dir: store }));
    const cwd = await tempDir();
    const args = [
      'upload',
      's3://kyc/cust-7/',
      '--entity-from',
      'dir',
      ...['--org', 'acme', '--base-url', server.url, '--rate', '0', '--json', '--journal', 'journal.jsonl'],
      '--strip-location',
      '--report',
      'report.json',
    ];
    const env = { ...s3Env(proxy.endpoint), U21_API_KEY: KEY };
    const result = await runBin(args, { cwd, env });
    expect(result.code, result.stderr).toBe(0);
    expect(Object.fromEntries(wholeGets)).toEqual({ '/kyc/cust-7/selfie.jpg': 1, '/kyc/cust-7/id_card_back.jpg': 1 });

    // The object without GPS is stored as it is in the bucket, the other without its GPS.
    expect(sha(await readFile(join(store, 'acme', 'cust-7', 'selfie.jpg')))).toBe(sha(plain));
    const stripped = await readFile(join(store, 'acme', 'cust-7', 'id_card_back.jpg'));
    expect(stripped.toString('latin1')).not.toContain('GPSMARK-WGS84');
    expect(stripped.length).toBe(located.length);

    // Everything said of the unchanged object is what is said of an object sent as it is.
    const url = 's3://kyc/cust-7/selfie.jpg';
    expect(result.events.find((e) => e.path === url)).toEqual({
      event: 'uploaded',
      path: url,
      entity_id: 'cust-7',
      media_type: 'IMAGE_FACE_IMAGE',
      bytes: plain.length,
      attempts: 1,
      sha256: sha(plain),
    });
    expect(result.events.find((e) => e.path === 's3://kyc/cust-7/id_card_back.jpg')).toMatchObject({
      sha256: sha(located),
      sent_sha256: sha(stripped),
      changes: ['location_stripped'],
    });
    const rows = JSON.parse(await readFile(join(cwd, 'report.json'), 'utf8')) as Array<Record<string, unknown>>;
    const row = rows.find((r) => r.path === url)!;
    expect(row).toMatchObject({
      abs_path: url,
      name: 'selfie.jpg',
      bytes: plain.length,
      sha256: sha(plain),
      outcome: 'uploaded',
      etag: md5(plain),
      version_id: null,
    });
    expect(Object.keys(row).filter((k) => k.startsWith('sent_') || k === 'changes')).toEqual([]);
    const records = (await readFile(join(cwd, 'journal.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((r) => r.path === url && r.outcome === 'uploaded');
    expect(records).toEqual([expect.objectContaining({ name: 'selfie.jpg', bytes: plain.length, sha256: sha(plain) })]);
    expect(Object.keys(records[0]!).filter((k) => k.startsWith('sent_') || k === 'changes')).toEqual([]);

    // A rerun finds both in the journal: the unchanged one by the object's own content.
    const again = await runBin(args, { cwd, env });
    expect(again.code, again.stderr).toBe(0);
    expect(of(again.events, 'skipped').map((e) => [e.path, e.reason])).toEqual(
      expect.arrayContaining([
        [url, 'journal'],
        ['s3://kyc/cust-7/id_card_back.jpg', 'journal'],
      ]),
    );
    expect(server.stored).toHaveLength(2);
  });
});
