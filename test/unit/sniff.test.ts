import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { contentChanged, detect, headChanged, judge } from '../../src/core/files/sniff.js';
import { FIXTURES, ROOT } from '../helpers.js';

const EVIDENCE = join(ROOT, 'test', 'fixtures', 'evidence');
const bytes = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
const judged = (ext: string, content: Buffer, convert = false) =>
  judge(ext, content, content.subarray(-1024), { convert, imageExtension: true });

describe('content sniffing', () => {
  it('knows every fixture for what its extension says, complete', async () => {
    for (const [name, kind] of [
      ['selfie.jpg', 'jpeg'],
      ['profile_picture.png', 'png'],
      ['proof_of_address.pdf', 'pdf'],
      ['liveness_video.mp4', 'mp4'],
    ] as const) {
      const content = await readFile(join(FIXTURES, name));
      expect(judged(name.split('.').pop()!, content), name).toEqual({ ok: true, detected: kind });
    }
  });

  it('tells what a mislabelled file really is, and the fix', async () => {
    const png = judged('jpg', await readFile(join(EVIDENCE, 'drivers_license_front.jpg')));
    expect(png).toEqual({ ok: false, detected: 'png', problem: 'holds a PNG image, not a JPEG; rename it to .png' });
    const html = judged('pdf', await readFile(join(EVIDENCE, 'proof_of_address.pdf')));
    expect(html).toMatchObject({
      ok: false,
      detected: 'html',
      problem: expect.stringMatching(/^holds an HTML page .*not a PDF; .*fetch the original again/),
    });
    const heic = judged('jpg', await readFile(join(EVIDENCE, 'passport_front.heic')));
    expect(heic).toMatchObject({ ok: false, detected: 'heic', problem: expect.stringMatching(/HEIC.*pass --convert/) });
    expect(judged('jpg', await readFile(join(EVIDENCE, 'id_card_front.webp')))).toMatchObject({
      ok: false,
      detected: 'webp',
    });
    expect(judged('jpg', bytes('504b0304 14000000'))).toMatchObject({ ok: false, detected: 'zip' });
  });

  it('lets HEIC and WebP under an image name pass when they are to be converted', async () => {
    expect(judged('jpg', await readFile(join(EVIDENCE, 'passport_front.heic')), true)).toEqual({
      ok: true,
      detected: 'heic',
    });
    expect(judged('heic', await readFile(join(EVIDENCE, 'passport_front.heic')), true)).toEqual({
      ok: true,
      detected: 'heic',
    });
  });

  it('calls a JPEG without FF D9, a PNG without IEND and a PDF without %%EOF truncated', async () => {
    expect(judged('jpg', await readFile(join(EVIDENCE, 'selfie_cut_off.jpg')))).toMatchObject({
      ok: false,
      detected: 'jpeg',
      problem: expect.stringMatching(/^looks truncated: a JPEG without its end marker/),
    });
    const png = await readFile(join(FIXTURES, 'profile_picture.png'));
    expect(judged('png', png.subarray(0, png.length - 12))).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^looks truncated: a PNG without its IEND/),
    });
    expect(judged('pdf', Buffer.from('%PDF-1.4\n1 0 obj\n'))).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^looks truncated: a PDF without %%EOF/),
    });
  });

  it('passes what has no reliable signature, and content it does not know under a name whose containers vary', () => {
    expect(judged('txt', Buffer.from('<html>a note about html</html>'))).toEqual({ ok: true, detected: 'html' });
    expect(judged('txt', Buffer.from('a plain note'))).toEqual({ ok: true, detected: 'unknown' });
    expect(judged('raw', bytes('ffd8ff00'))).toEqual({ ok: true, detected: 'jpeg' });
    for (const ext of ['mp4', 'mov', 'avi', 'wmv', 'mkv', 'eps', 'heic', 'heif', 'webp', 'avif']) {
      expect(judged(ext, Buffer.alloc(100, 7)), ext).toEqual({ ok: true, detected: 'unknown' });
    }
  });

  it('refuses text under a name whose kind always opens with its signature, and says it is text', () => {
    const labels = {
      jpg: 'a JPEG image',
      jpeg: 'a JPEG image',
      png: 'a PNG image',
      gif: 'a GIF image',
      tif: 'a TIFF image',
      tiff: 'a TIFF image',
      pdf: 'a PDF',
    };
    for (const [ext, label] of Object.entries(labels)) {
      for (const text of ['Access denied\n', 'name,id\nJane Doe,42\n', 'placeholder ✓ ünïcode\r\n\tindented\f']) {
        expect(judged(ext, Buffer.from(text)), `${ext}: ${text}`).toEqual({
          ok: false,
          detected: 'unknown',
          problem: `does not start as ${label} does (it holds text); fetch the original again, or pass --no-sniff to send it as it is`,
        });
      }
    }
    // A character cut in two by the 4 KB read is still text.
    const long = Buffer.from('é'.repeat(3000));
    expect(judged('pdf', long.subarray(0, 4095))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('(it holds text)'),
    });
    // %PDF- further in than 1024 bytes is not a PDF header.
    expect(judged('pdf', Buffer.from(`${'x'.repeat(1024)}%PDF-1.4\n%%EOF\n`))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('(it holds text)'),
    });
  });

  it('calls content that is neither a signature nor text unrecognised bytes', () => {
    const random = bytes('00 13 37 c0 ff ee 42 00 7f 81 fe 01 02 03 04 05');
    for (const ext of ['jpg', 'jpeg', 'png', 'gif', 'tif', 'tiff', 'pdf']) {
      expect(judged(ext, random), ext).toMatchObject({
        ok: false,
        detected: 'unknown',
        problem: expect.stringMatching(
          /^does not start as .* does \(it holds unrecognised bytes\); fetch the original again, or pass --no-sniff/,
        ),
      });
    }
    // Valid UTF-8 with control characters in it is not text a person saved.
    expect(judged('jpg', Buffer.from('Access\u0000denied'))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('(it holds unrecognised bytes)'),
    });
    // Bytes that are not UTF-8 (Latin-1 é) are not called text.
    expect(judged('png', Buffer.from('caf\xe9 au lait', 'latin1'))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('(it holds unrecognised bytes)'),
    });
  });

  it('calls a checked file changed when its head no longer holds the kind it was found to be, in the same words', async () => {
    const jpeg = await readFile(join(FIXTURES, 'selfie.jpg'));
    expect(headChanged('jpeg', jpeg)).toBeUndefined();
    expect(contentChanged('jpeg', jpeg)).toBeUndefined();
    expect(headChanged('jpeg', Buffer.from('Access denied'))).toMatch(
      /^its content changed after the check \(it now holds text\), so it was not sent/,
    );
    expect(contentChanged('jpeg', Buffer.alloc(64, 7))).toMatch(
      /^its content changed after the check \(it now holds unrecognised bytes\)/,
    );
    expect(contentChanged('jpeg', jpeg.subarray(0, jpeg.length - 2))).toMatch(
      /now looks truncated: a JPEG without its end marker/,
    );
    // What a lenient extension let through as unknown stays so; --no-sniff checked nothing.
    expect(headChanged('unknown', Buffer.alloc(64, 7))).toBeUndefined();
    expect(headChanged(undefined, Buffer.from('Access denied'))).toBeUndefined();
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
