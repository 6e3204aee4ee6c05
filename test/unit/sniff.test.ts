import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { detect, judge } from '../../src/core/files/sniff.js';
import { FIXTURES, ROOT } from '../helpers.js';

const EVIDENCE = join(ROOT, 'test', 'fixtures', 'evidence');
const bytes = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
const judged = (ext: string, content: Buffer, convert = false) => judge(ext, content, content.subarray(-1024), { convert, imageExtension: true });

describe('content sniffing', () => {
  it('knows every fixture for what its extension says, complete', async () => {
    for (const [name, kind] of [['selfie.jpg', 'jpeg'], ['profile_picture.png', 'png'], ['proof_of_address.pdf', 'pdf'], ['liveness_video.mp4', 'mp4']] as const) {
      const content = await readFile(join(FIXTURES, name));
      expect(judged(name.split('.').pop()!, content), name).toEqual({ ok: true, detected: kind });
    }
  });

  it('tells what a mislabelled file really is, and the fix', async () => {
    const png = judged('jpg', await readFile(join(EVIDENCE, 'drivers_license_front.jpg')));
    expect(png).toEqual({ ok: false, detected: 'png', problem: 'holds a PNG image, not a JPEG; rename it to .png' });
    const html = judged('pdf', await readFile(join(EVIDENCE, 'proof_of_address.pdf')));
    expect(html).toMatchObject({ ok: false, detected: 'html', problem: expect.stringMatching(/^holds an HTML page .*not a PDF; .*fetch the original again/) });
    const heic = judged('jpg', await readFile(join(EVIDENCE, 'passport_front.heic')));
    expect(heic).toMatchObject({ ok: false, detected: 'heic', problem: expect.stringMatching(/HEIC.*pass --convert/) });
    expect(judged('jpg', await readFile(join(EVIDENCE, 'id_card_front.webp')))).toMatchObject({ ok: false, detected: 'webp' });
    expect(judged('jpg', bytes('504b0304 14000000'))).toMatchObject({ ok: false, detected: 'zip' });
  });

  it('lets HEIC and WebP under an image name pass when they are to be converted', async () => {
    expect(judged('jpg', await readFile(join(EVIDENCE, 'passport_front.heic')), true)).toEqual({ ok: true, detected: 'heic' });
    expect(judged('heic', await readFile(join(EVIDENCE, 'passport_front.heic')), true)).toEqual({ ok: true, detected: 'heic' });
  });

  it('calls a JPEG without FF D9, a PNG without IEND and a PDF without %%EOF truncated', async () => {
    expect(judged('jpg', await readFile(join(EVIDENCE, 'selfie_cut_off.jpg')))).toMatchObject({ ok: false, detected: 'jpeg', problem: expect.stringMatching(/^looks truncated: a JPEG without its end marker/) });
    const png = await readFile(join(FIXTURES, 'profile_picture.png'));
    expect(judged('png', png.subarray(0, png.length - 12))).toMatchObject({ ok: false, problem: expect.stringMatching(/^looks truncated: a PNG without its IEND/) });
    expect(judged('pdf', Buffer.from('%PDF-1.4\n1 0 obj\n'))).toMatchObject({ ok: false, problem: expect.stringMatching(/^looks truncated: a PDF without %%EOF/) });
  });

  it('passes what has no reliable signature, and content it does not know', () => {
    expect(judged('txt', Buffer.from('<html>a note about html</html>'))).toEqual({ ok: true, detected: 'html' });
    expect(judged('raw', bytes('ffd8ff00'))).toEqual({ ok: true, detected: 'jpeg' });
    expect(judged('jpg', Buffer.alloc(100, 7))).toEqual({ ok: true, detected: 'unknown' });
  });

  it('reads ISO media brands: HEIC, AVIF, QuickTime and MP4 apart', () => {
    const ftyp = (major: string, ...compatible: string[]) => {
      const box = Buffer.alloc(16 + 4 * compatible.length);
      box.writeUInt32BE(box.length, 0);
      box.write('ftyp', 4, 'latin1');
      box.write(major, 8, 'latin1');
      compatible.forEach((brand, i) => box.write(brand, 16 + 4 * i, 'latin1'));
      return box;
    };
    expect(detect(ftyp('mif1', 'heic'))).toBe('heic');
    expect(detect(ftyp('avif', 'mif1'))).toBe('avif');
    expect(detect(ftyp('qt  '))).toBe('mov');
    expect(detect(ftyp('isom', 'mp41'))).toBe('mp4');
    expect(detect(Buffer.from('\uFEFF  <!doctype HTML><title>x</title>'))).toBe('html');
    expect(detect(Buffer.from('<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>'))).toBe('xml');
    expect(detect(Buffer.from('BMW service report'))).toBe('unknown');
    // A gzip stream names its method: 1f 8b alone is one random file in 65,536, not an archive.
    expect(detect(gzipSync('a saved page'))).toBe('gzip');
    expect(detect(bytes('1f8b 00 11 22 33'))).toBe('unknown');
  });
});
