import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, ROOT, runBin, sha256, tempDir } from '../helpers.js';

const KEY = 'evidence-secret-key-42';
const EVIDENCE = join(ROOT, 'test', 'fixtures', 'evidence');

async function sandbox(dir?: string): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey: KEY, org: 'acme', ...(dir && { dir }) }));
}

const upload = (server: Sandbox, ...args: string[]) => [
  'upload',
  ...args,
  '--org',
  'acme',
  '--base-url',
  server.url,
  '--entity',
  'cust-7',
  '--no-journal',
];

/** A folder holding the fixtures and, beside them, the named evidence files under the names given. */
async function folderWith(files: Record<string, string>): Promise<string> {
  const dir = join(await tempDir(), 'kyc');
  await mkdir(dir);
  for (const name of ['selfie.jpg', 'proof_of_address.pdf', 'profile_picture.png'])
    await copyFile(join(FIXTURES, name), join(dir, name));
  for (const [name, from] of Object.entries(files)) await copyFile(join(EVIDENCE, from), join(dir, name));
  return dir;
}

describe('content checks before sending (built binary)', () => {
  it.each([
    [
      'a PNG named .jpg',
      'drivers_license_front.jpg',
      'drivers_license_front.jpg',
      /drivers_license_front\.jpg: holds a PNG image, not a JPEG; rename it to \.png/,
    ],
    [
      'an HTML page named .pdf',
      'statement.pdf',
      'proof_of_address.pdf',
      /statement\.pdf: holds an HTML page .*not a PDF/,
    ],
    [
      'an iPhone HEIC renamed .jpg',
      'passport_front.jpg',
      'passport_front.heic',
      /passport_front\.jpg: holds a HEIC\/HEIF image .*pass --convert/,
    ],
    [
      'a WebP named .jpg',
      'id_card_front.jpg',
      'id_card_front.webp',
      /id_card_front\.jpg: holds a WebP image, not a JPEG/,
    ],
    [
      'a JPEG cut off halfway',
      'selfie_2.jpg',
      'selfie_cut_off.jpg',
      /selfie_2\.jpg: looks truncated: a JPEG without its end marker/,
    ],
  ])('refuses %s with exit 2, naming it, and sends nothing', async (_, name, from, message) => {
    const server = await sandbox();
    const dir = await folderWith({ [name]: from });
    const result = await runBin([...upload(server, dir), '--json'], { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    const error = result.events.find((e) => e.event === 'error') as {
      problems: Array<{ path: string; message: string }>;
    };
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]!.path).toBe(join(dir, name));
    expect(server.requests).toHaveLength(0);
    expect(server.stored).toHaveLength(0);
  });

  it('shows in the dry run what each file was detected as, and --no-sniff sends a mislabelled file as it is', async () => {
    const server = await sandbox();
    const dir = await folderWith({ 'drivers_license_front.jpg': 'drivers_license_front.jpg' });
    const dry = await runBin([...upload(server, dir), '--json', '--dry-run', '--skip-invalid'], { cwd: dir });
    const detected = Object.fromEntries(
      dry.events.filter((e) => e.event === 'planned').map((e) => [String(e.path).split('/').pop(), e.detected]),
    );
    expect(detected).toEqual({ 'selfie.jpg': 'jpeg', 'proof_of_address.pdf': 'pdf', 'profile_picture.png': 'png' });
    expect(dry.events).toContainEqual(
      expect.objectContaining({ event: 'skipped', reason: 'invalid', path: join(dir, 'drivers_license_front.jpg') }),
    );

    const sent = await runBin([...upload(server, dir), '--json', '--no-sniff'], {
      cwd: dir,
      env: { U21_API_KEY: KEY },
    });
    expect(sent.code).toBe(0);
    expect(server.stored.map((m) => m.name).sort()).toEqual([
      'drivers_license_front.jpg',
      'profile_picture.png',
      'proof_of_address.pdf',
      'selfie.jpg',
    ]);
    const planned = await runBin([...upload(server, dir), '--json', '--dry-run', '--no-sniff'], { cwd: dir });
    expect(planned.events.filter((e) => e.event === 'planned').every((e) => e.detected === null)).toBe(true);
  });

  describe('a .jpg, .png or .pdf whose content opens as no image or PDF does', () => {
    const JPEG_WORDS = 'does not start as a JPEG image does';
    const FIX = 'fetch the original again, or pass --no-sniff to send it as it is';
    // What a failed download or export leaves under a photo's name, beside one real photo.
    const stand_ins: Record<string, Buffer> = {
      'error_page.jpg': Buffer.from('<html>Access denied</html>'),
      'placeholder.jpg': Buffer.from('Access denied\n'),
      'export.png': Buffer.from('name,id\nJane Doe,42\n'),
      'scan.pdf': Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    };
    const expected = (dir: string) => [
      {
        path: join(dir, 'error_page.jpg'),
        message: expect.stringMatching(/^holds an HTML page .*not a JPEG; fetch the original again/),
      },
      { path: join(dir, 'export.png'), message: `does not start as a PNG image does (it holds text); ${FIX}` },
      { path: join(dir, 'placeholder.jpg'), message: `${JPEG_WORDS} (it holds text); ${FIX}` },
      { path: join(dir, 'scan.pdf'), message: `does not start as a PDF does (it holds unrecognised bytes); ${FIX}` },
    ];
    async function folder(): Promise<string> {
      const dir = join(await tempDir(), 'kyc');
      await mkdir(dir);
      await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
      for (const [name, bytes] of Object.entries(stand_ins)) await writeFile(join(dir, name), bytes);
      return dir;
    }
    const problemsOf = (events: Array<Record<string, unknown>>) =>
      (events.find((e) => e.event === 'error') as { problems: Array<{ path: string }> }).problems.sort((a, b) =>
        a.path.localeCompare(b.path),
      );

    it('refuses them with exit 2, naming each, and sends nothing; the dry run says the same', async () => {
      const server = await sandbox();
      const dir = await folder();
      const sent = await runBin([...upload(server, dir), '--json'], { cwd: dir, env: { U21_API_KEY: KEY } });
      expect(sent.code).toBe(2);
      expect(problemsOf(sent.events)).toEqual(expected(dir));
      expect(sent.stderr).toContain(`placeholder.jpg: ${JPEG_WORDS} (it holds text); ${FIX}`);
      expect(server.requests).toHaveLength(0);
      expect(server.stored).toHaveLength(0);

      const dry = await runBin([...upload(server, dir), '--json', '--dry-run'], { cwd: dir });
      expect(dry.code).toBe(2);
      expect(problemsOf(dry.events)).toEqual(expected(dir));
      expect(dry.events.filter((e) => e.event === 'planned').map((e) => e.path)).toEqual([join(dir, 'selfie.jpg')]);
      expect(server.requests).toHaveLength(0);
    });

    it('with --skip-invalid stores only the real photo, and the dry run plans only it', async () => {
      const server = await sandbox();
      const dir = await folder();
      const dry = await runBin([...upload(server, dir), '--json', '--dry-run', '--skip-invalid'], { cwd: dir });
      expect(dry.code).toBe(1);
      expect(dry.events.filter((e) => e.event === 'planned').map((e) => [e.path, e.detected])).toEqual([
        [join(dir, 'selfie.jpg'), 'jpeg'],
      ]);
      const skipped = (events: Array<Record<string, unknown>>) =>
        events
          .filter((e) => e.event === 'skipped' && e.reason === 'invalid')
          .map((e) => e.path)
          .sort();
      expect(skipped(dry.events)).toEqual(
        Object.keys(stand_ins)
          .map((name) => join(dir, name))
          .sort(),
      );

      const sent = await runBin([...upload(server, dir), '--json', '--skip-invalid'], {
        cwd: dir,
        env: { U21_API_KEY: KEY },
      });
      expect(sent.code).toBe(1);
      expect(skipped(sent.events)).toEqual(skipped(dry.events));
      expect(server.stored.map((m) => [m.name, m.sha256])).toEqual([
        ['selfie.jpg', await sha256(join(FIXTURES, 'selfie.jpg'))],
      ]);
    });

    it('with --no-sniff sends every one as it is', async () => {
      const server = await sandbox();
      const dir = await folder();
      const dry = await runBin([...upload(server, dir), '--json', '--dry-run', '--no-sniff'], { cwd: dir });
      expect(dry.code).toBe(0);
      expect(dry.events.filter((e) => e.event === 'planned')).toHaveLength(5);
      const sent = await runBin([...upload(server, dir), '--json', '--no-sniff'], {
        cwd: dir,
        env: { U21_API_KEY: KEY },
      });
      expect(sent.code).toBe(0);
      const names = ['selfie.jpg', ...Object.keys(stand_ins)];
      const shas = await Promise.all(names.map(async (name) => [name, await sha256(join(dir, name))]));
      expect(server.stored.map((m) => [m.name, m.sha256]).sort()).toEqual(shas.sort());
      expect(shas.find(([name]) => name === 'placeholder.jpg')![1]).toBe(
        createHash('sha256').update('Access denied\n').digest('hex'),
      );
    });
  });

  it('passes every fixture the demo uploads', async () => {
    const server = await sandbox();
    const result = await runBin([...upload(server, FIXTURES), '--json', '--dry-run'], { cwd: FIXTURES });
    expect(result.code).toBe(0);
    expect(result.events.at(-1)).toMatchObject({ event: 'summary', planned: 10, invalid: 0 });
    expect(await readFile(join(FIXTURES, 'proof_of_address.pdf'), 'latin1')).toMatch(/%%EOF\s*$/);
  });
});

/** The tags of a JPEG's EXIF IFD0 (0x8825 links the GPS block). */
function exifIfd0Tags(jpeg: Buffer): number[] {
  const at = jpeg.indexOf(Buffer.from('Exif\0\0', 'latin1'));
  if (at < 0) return [];
  const tiff = jpeg.subarray(at + 6);
  const le = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const ifd0 = le ? tiff.readUInt32LE(4) : tiff.readUInt32BE(4);
  return Array.from({ length: u16(ifd0) }, (_, i) => u16(ifd0 + 2 + i * 12));
}

/** What the sandbox stored for entity cust-7, by name. */
const storedFile = (store: string, name: string) => readFile(join(store, 'acme', 'cust-7', name));

describe('changing photos to fit, opt-in (built binary, real sandbox)', () => {
  it('--convert stores a real JPEG of the HEIC under a .jpg name, the report holds both hashes, and a rerun sends nothing again', async () => {
    const store = await tempDir();
    const server = await sandbox(store);
    const dir = await folderWith({
      'passport_front.heic': 'passport_front.heic',
      'id_card_front.webp': 'id_card_front.webp',
    });
    const original = await sha256(join(dir, 'passport_front.heic'));
    const args = [...upload(server, dir), '--convert', '--report', 'report.json', '--json'];
    const journal = ['--journal', 'journal.jsonl'];
    const result = await runBin([...args.filter((a) => a !== '--no-journal'), ...journal], {
      cwd: dir,
      env: { U21_API_KEY: KEY },
    });
    expect(result.code).toBe(0);

    const heic = server.stored.find((m) => m.name === 'passport_front.jpg')!;
    expect(heic).toMatchObject({ mediaType: 'IMAGE_PASSPORT_FRONT', contentType: 'image/jpeg' });
    const jpeg = await storedFile(store, 'passport_front.jpg');
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 160, 100]);
    expect((await sharp(await storedFile(store, 'id_card_front.jpg')).metadata()).format).toBe('jpeg');

    const uploaded = result.events.find((e) => e.path === join(dir, 'passport_front.heic'))!;
    expect(uploaded).toMatchObject({
      event: 'uploaded',
      bytes: 1001,
      sha256: original,
      sent_name: 'passport_front.jpg',
      sent_bytes: jpeg.length,
      sent_sha256: heic.sha256,
      changes: ['converted'],
    });
    const rows = (
      JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as Array<Record<string, unknown>>
    ).filter((r) => r.path === join(dir, 'passport_front.heic'));
    expect(rows).toEqual([
      expect.objectContaining({
        abs_path: join(dir, 'passport_front.heic'),
        name: 'passport_front.jpg',
        sha256: original,
        bytes: 1001,
        sent_sha256: heic.sha256,
        sent_bytes: jpeg.length,
        changes: ['converted'],
      }),
    ]);
    // The original is as it was, and no copy is left behind.
    expect(await sha256(join(dir, 'passport_front.heic'))).toBe(original);
    expect(server.stored).toHaveLength(5);

    const again = await runBin([...args.filter((a) => a !== '--no-journal'), ...journal], {
      cwd: dir,
      env: { U21_API_KEY: KEY },
    });
    expect(again.code).toBe(0);
    expect(again.events.filter((e) => e.event === 'skipped' && e.reason === 'journal')).toHaveLength(5);
    expect(server.stored).toHaveLength(5);
  });

  it('--fit turns an 8 MB sideways phone photo into an upright JPEG of at most 5,000,000 bytes and a long side of 3,000 px', async () => {
    const store = await tempDir();
    const server = await sandbox(store);
    const dir = join(await tempDir(), 'kyc');
    await mkdir(dir);
    // Stored 6000×4500 with EXIF orientation 6: shown upright it is 4500×6000, and the red block stored top left shows top right.
    const [w, h] = [6000, 4500];
    const noise = randomBytes(w * h);
    const pixels = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3;
        const n = noise[y * w + x]! >> 3;
        const red = x < 600 && y < 600;
        pixels[i] = red ? 255 : ((x >> 3) & 0xff) ^ n;
        pixels[i + 1] = red ? 0 : ((y >> 4) & 0xff) + n;
        pixels[i + 2] = red ? 0 : 128 + n;
      }
    }
    const photo = await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 90 })
      .toBuffer();
    expect(photo.length).toBeGreaterThan(7_000_000);
    await writeFile(join(dir, 'selfie.jpg'), photo);

    const result = await runBin([...upload(server, dir), '--fit', '--json'], { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(result.code).toBe(0);
    const stored = await storedFile(store, 'selfie.jpg');
    expect(stored.length).toBeLessThanOrEqual(5_000_000);
    const meta = await sharp(stored).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 2250, 3000]);
    expect(meta.orientation ?? 1).toBe(1);
    const { data, info } = await sharp(stored).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [
      ...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3),
    ];
    expect(at(info.width - 100, 100)[0]).toBeGreaterThan(200); // red, top right
    expect(at(100, 100)[0]).toBeLessThan(200);
    expect(result.events.find((e) => e.event === 'uploaded')).toMatchObject({
      bytes: photo.length,
      sent_bytes: stored.length,
      sent_name: 'selfie.jpg',
      changes: ['fitted'],
    });
    expect(await readdir(dir)).toEqual(['selfie.jpg']);
  }, 60_000);

  it('--strip-location takes out the EXIF GPS block and XMP GPS, and keeps the pixels and every other tag', async () => {
    const store = await tempDir();
    const server = await sandbox(store);
    const dir = join(await tempDir(), 'kyc');
    await mkdir(dir);
    const xmp =
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="51,30.0N" exif:UserComment="kept"><exif:GPSLongitude>0,7.0W</exif:GPSLongitude></rdf:Description></rdf:RDF></x:xmpmeta>';
    const photo = await sharp(join(EVIDENCE, 'drivers_license_front.jpg'))
      .withExif({
        IFD0: { Artist: 'Examiner-7' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSMapDatum: 'GPSMARK-WGS84' },
      })
      .withXmp(xmp)
      .jpeg()
      .toBuffer();
    expect(exifIfd0Tags(photo)).toContain(0x8825);
    expect(photo.toString('latin1')).toContain('GPSMARK-WGS84');
    await writeFile(join(dir, 'id_card_back.jpg'), photo);

    const result = await runBin([...upload(server, dir), '--strip-location', '--json'], {
      cwd: dir,
      env: { U21_API_KEY: KEY },
    });
    expect(result.code).toBe(0);
    const stored = await storedFile(store, 'id_card_back.jpg');
    const text = stored.toString('latin1');
    expect(exifIfd0Tags(stored)).not.toContain(0x8825);
    expect(text).not.toContain('GPSMARK-WGS84');
    expect(text).not.toMatch(/GPSLatitude|GPSLongitude/);
    expect(text).toContain('Examiner-7');
    expect(text).toContain('exif:UserComment="kept"');
    expect(stored.length).toBe(photo.length);
    const [before, after] = await Promise.all([sharp(photo).raw().toBuffer(), sharp(stored).raw().toBuffer()]);
    expect(after.equals(before)).toBe(true);
    expect(await readFile(join(dir, 'id_card_back.jpg'))).toEqual(photo);
    expect(result.events.find((e) => e.event === 'uploaded')).toMatchObject({
      sha256: await sha256(join(dir, 'id_card_back.jpg')),
      changes: ['location_stripped'],
    });

    // A photo with no GPS is sent as it is, with nothing said of changes.
    const plain = await runBin([...upload(server, FIXTURES), '--strip-location', '--json'], {
      cwd: dir,
      env: { U21_API_KEY: KEY },
    });
    expect(plain.code).toBe(0);
    expect(plain.events.filter((e) => e.event === 'uploaded' && 'changes' in e)).toEqual([]);
  });
});
