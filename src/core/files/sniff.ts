import { isUtf8 } from 'node:buffer';
import { close, open, read } from 'node:fs';
import { NON_BLOCKING_READ } from './file-identity.js';

/** What a file's first bytes say it is; `unknown` when no signature of ours matches. */
export type Detected =
  | 'jpeg'
  | 'png'
  | 'gif'
  | 'tiff'
  | 'bmp'
  | 'webp'
  | 'heic'
  | 'avif'
  | 'svg'
  | 'pdf'
  | 'eps'
  | 'html'
  | 'xml'
  | 'zip'
  | 'gzip'
  | 'mp4'
  | 'mov'
  | 'avi'
  | 'wmv'
  | 'mkv'
  | 'unknown';

/** Enough for every signature below, and for %PDF- anywhere in the first 1024 bytes (as readers allow). */
export const HEAD_BYTES = 4096;
/** The end markers are looked for here: Acrobat wants %%EOF within the last 1024 bytes. */
export const TAIL_BYTES = 1024;

const LABEL: Record<Exclude<Detected, 'unknown'>, string> = {
  jpeg: 'a JPEG image',
  png: 'a PNG image',
  gif: 'a GIF image',
  tiff: 'a TIFF image',
  bmp: 'a BMP image',
  webp: 'a WebP image',
  heic: 'a HEIC/HEIF image (an iPhone photo)',
  avif: 'an AVIF image',
  svg: 'an SVG drawing',
  pdf: 'a PDF',
  eps: 'a PostScript/EPS file',
  html: 'an HTML page (often a saved error or login page)',
  xml: 'an XML document (often a saved error response)',
  zip: 'a ZIP archive (or .docx/.xlsx)',
  gzip: 'a gzip archive',
  mp4: 'an MP4 video',
  mov: 'a QuickTime video',
  avi: 'an AVI video',
  wmv: 'a WMV video',
  mkv: 'a Matroska/WebM video',
};

/** The content each extension may hold. Extensions not listed (txt, raw) have no reliable signature and are not checked. */
const EXPECTED: Readonly<Record<string, readonly Detected[]>> = {
  jpg: ['jpeg'],
  jpeg: ['jpeg'],
  png: ['png'],
  gif: ['gif'],
  tiff: ['tiff'],
  tif: ['tiff'],
  pdf: ['pdf'],
  eps: ['eps'],
  // One container family: players take either.
  mp4: ['mp4', 'mov'],
  mov: ['mov', 'mp4'],
  avi: ['avi'],
  wmv: ['wmv'],
  mkv: ['mkv'],
  // Taken only with --convert.
  heic: ['heic', 'avif'],
  heif: ['heic', 'avif'],
  webp: ['webp'],
  avif: ['avif'],
};

/**
 * Extensions whose kind always opens with its signature: content that matches none is not what
 * the name says (a saved error, a placeholder, a renamed CSV). Videos, EPS and HEIF-family
 * containers vary too much to say so.
 */
const SIGNED_EXTENSIONS: ReadonlySet<string> = new Set(['jpg', 'jpeg', 'png', 'gif', 'tif', 'tiff', 'pdf']);

/** The extension Unit21 takes for each kind, to say "rename it to .png". */
const EXTENSION_OF: Partial<Record<Detected, string>> = {
  jpeg: 'jpg',
  png: 'png',
  gif: 'gif',
  tiff: 'tiff',
  pdf: 'pdf',
  eps: 'eps',
  mp4: 'mp4',
  mov: 'mov',
  avi: 'avi',
  wmv: 'wmv',
  mkv: 'mkv',
};

const KIND_OF_EXTENSION: Readonly<Record<string, Detected>> = {
  jpg: 'jpeg',
  jpeg: 'jpeg',
  png: 'png',
  tiff: 'tiff',
  tif: 'tiff',
  heic: 'heic',
  heif: 'heic',
  avif: 'avif',
  webp: 'webp',
};

/** The image kind an extension names, for a file whose content was not checked. */
export const kindOfExtension = (ext: string): Detected | undefined => KIND_OF_EXTENSION[ext];

/** Images --convert turns into JPEG. */
export const CONVERTIBLE: ReadonlySet<Detected> = new Set(['heic', 'avif', 'webp']);

/** Whether an extension's content is checked at all. */
export const isSniffed = (ext: string) => EXPECTED[ext] !== undefined;

const ascii = (bytes: Buffer, start: number, end: number) => bytes.toString('latin1', start, end);
const signatures = new Map<string, Buffer>();
/** Whether `bytes` holds the signature `hex` at `at`; each signature is made into bytes once, not once a file. */
function startsWith(bytes: Buffer, hex: string, at = 0): boolean {
  let signature = signatures.get(hex);
  if (!signature) signatures.set(hex, (signature = Buffer.from(hex, 'hex')));
  return (
    bytes.length >= at + signature.length &&
    bytes.compare(signature, 0, signature.length, at, at + signature.length) === 0
  );
}

// ISO base media (MP4, QuickTime, HEIF): the brands that mark a HEIF still image.
const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);
const AVIF_BRANDS = new Set(['avif', 'avis']);
// A QuickTime file may start with one of these atoms instead of ftyp.
const QUICKTIME_ATOMS = new Set(['moov', 'mdat', 'wide', 'free', 'skip', 'pnot']);

/** What the first bytes of a file are, by signature. */
export function detect(head: Buffer): Detected {
  if (startsWith(head, 'ffd8ff')) return 'jpeg';
  if (startsWith(head, '89504e470d0a1a0a')) return 'png';
  const first6 = ascii(head, 0, 6);
  if (first6 === 'GIF87a' || first6 === 'GIF89a') return 'gif';
  if (
    startsWith(head, '49492a00') ||
    startsWith(head, '4d4d002a') ||
    startsWith(head, '49492b00') ||
    startsWith(head, '4d4d002b')
  )
    return 'tiff';
  if (first6.startsWith('%!PS') || startsWith(head, 'c5d0d3c6')) return 'eps';
  if (startsWith(head, '1a45dfa3')) return 'mkv';
  if (startsWith(head, '3026b2758e66cf11a6d900aa0062ce6c')) return 'wmv';
  if (startsWith(head, '504b0304') || startsWith(head, '504b0506') || startsWith(head, '504b0708')) return 'zip';
  // With its method byte (8, deflate, the only one defined): two bytes alone open one random file in 65,536.
  if (startsWith(head, '1f8b08')) return 'gzip';
  if (ascii(head, 0, 4) === 'RIFF') {
    const form = ascii(head, 8, 12);
    if (form === 'WEBP') return 'webp';
    if (form === 'AVI ') return 'avi';
  }
  const box = ascii(head, 4, 8);
  if (box === 'ftyp') return isoBrand(head);
  if (QUICKTIME_ATOMS.has(box) && head.length >= 8) return 'mov';
  if (isBmp(head)) return 'bmp';
  // Readers accept a PDF header anywhere in the first 1024 bytes.
  if (head.subarray(0, 1024).includes('%PDF-')) return 'pdf';
  return markup(head);
}

/** An ISO base media file by its brands: HEIF still images, AVIF, QuickTime or MP4. */
function isoBrand(head: Buffer): Detected {
  const size = Math.min(head.readUInt32BE(0), head.length);
  const brands = [ascii(head, 8, 12)];
  for (let at = 16; at + 4 <= size; at += 4) brands.push(ascii(head, at, at + 4));
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIC_BRANDS.has(b))) return 'heic';
  return brands[0] === 'qt  ' ? 'mov' : 'mp4';
}

/** "BM" alone is too weak (a text may start so): the reserved bytes must be zero and the header size a known one. */
function isBmp(head: Buffer): boolean {
  if (head.length < 18 || ascii(head, 0, 2) !== 'BM' || head.readUInt32LE(6) !== 0) return false;
  return [12, 40, 52, 56, 64, 108, 124].includes(head.readUInt32LE(14));
}

/** HTML, SVG or other XML, after a byte-order mark, white space and comments. */
function markup(head: Buffer): Detected {
  let at = startsWith(head, 'efbbbf') ? 3 : 0;
  while (at < head.length && (head[at] === 0x20 || (head[at]! >= 0x09 && head[at]! <= 0x0d))) at++;
  // Most files are not markup, as their first byte says: no text is decoded for them.
  if (head[at] !== 0x3c) return 'unknown';
  const text = head.toString('utf8', at, 1024).toLowerCase();
  if (/^<(!doctype html|html|head|body|script|title|meta)\b/.test(text)) return 'html';
  if (text.startsWith('<?xml') || text.startsWith('<!--')) {
    if (text.includes('<svg')) return 'svg';
    if (text.includes('<html')) return 'html';
    return text.startsWith('<?xml') ? 'xml' : 'unknown';
  }
  if (text.startsWith('<svg')) return 'svg';
  return 'unknown';
}

/** Kinds whose end marker is cheap to check, with what to look for in the tail. */
const END_MARKERS: Partial<Record<Detected, { marker: Buffer; says: string }>> = {
  jpeg: { marker: Buffer.from('ffd9', 'hex'), says: 'a JPEG without its end marker (FF D9)' },
  png: { marker: Buffer.from('49454e44ae426082', 'hex'), says: 'a PNG without its IEND chunk' },
  pdf: { marker: Buffer.from('%%EOF', 'latin1'), says: 'a PDF without %%EOF in its last 1024 bytes' },
};

/** Whether a kind's tail is worth reading. */
export const hasEndMarker = (kind: Detected) => END_MARKERS[kind] !== undefined;

/** What a tail lacks, or undefined when it ends as the kind's files do. */
function missingEnd(kind: Detected, tail: Buffer): string | undefined {
  const end = END_MARKERS[kind];
  return end && !tail.includes(end.marker) ? end.says : undefined;
}

/** What the check made of a file's content. */
export type SniffVerdict =
  | { ok: true; detected: Detected }
  /** Wrong content for its extension, or cut short: an input problem, with the fix. */
  | { ok: false; detected: Detected; problem: string };

/**
 * Compares a file's content with its extension. `convert`: HEIC, AVIF and WebP content is
 * expected to be converted (--convert), so it passes under an image extension.
 */
export function judge(
  ext: string,
  head: Buffer,
  tail: Buffer,
  options: { convert: boolean; imageExtension: boolean },
): SniffVerdict {
  const detected = detect(head);
  const expected = EXPECTED[ext];
  if (!expected) return { ok: true, detected };
  const named = LABEL[expected[0] as Exclude<Detected, 'unknown'>];
  if (detected === 'unknown') {
    if (!SIGNED_EXTENSIONS.has(ext)) return { ok: true, detected };
    return {
      ok: false,
      detected,
      problem: `does not start as ${named} does (it holds ${unrecognised(head)}); fetch the original again, or pass --no-sniff to send it as it is`,
    };
  }
  if (!expected.includes(detected)) {
    if (options.convert && CONVERTIBLE.has(detected) && options.imageExtension) return { ok: true, detected };
    return {
      ok: false,
      detected,
      problem: `holds ${LABEL[detected]}, not ${named.replace(/ image$/, '')}; ${fixFor(detected)}`,
    };
  }
  const missing = missingEnd(detected, tail);
  if (missing)
    return {
      ok: false,
      detected,
      problem: `looks truncated: ${missing}, as when a download or copy is cut off; fetch the original again (or pass --no-sniff to send it as it is)`,
    };
  return { ok: true, detected };
}

/** Why a file's first bytes are no longer what the check found (`detected`), or undefined; nothing when it was not checked. */
export function headChanged(detected: Detected | undefined, head: Buffer): string | undefined {
  if (detected === undefined) return undefined; // --no-sniff, or a kind with no signature
  const now = detect(head);
  return now === detected
    ? undefined
    : `its content changed after the check (it now holds ${now === 'unknown' ? unrecognised(head) : LABEL[now]}), so it was not sent; run again once it is as it should be`;
}

/** What content no signature matches holds: text says an error page or placeholder was saved under the name. */
function unrecognised(head: Buffer): string {
  return isText(head.subarray(0, 1024)) ? 'text' : 'unrecognised bytes';
}

/** Whether bytes are UTF-8 text without control characters other than white space; a character cut at the end still counts. */
function isText(bytes: Buffer): boolean {
  // Control characters are single bytes in UTF-8: no byte of a longer character is below 0x80.
  if (bytes.some((byte) => (byte < 0x20 && (byte < 0x09 || byte > 0x0d)) || byte === 0x7f)) return false;
  // Drop a last character cut off by the read: at most 3 bytes of it.
  let end = bytes.length;
  while (end > 0 && bytes.length - end < 3 && !isUtf8(bytes.subarray(0, end))) end--;
  return end > 0 && isUtf8(bytes.subarray(0, end));
}

/** Why a whole file's bytes are no longer what the check found, or undefined. */
export const contentChanged = (detected: Detected | undefined, bytes: Buffer): string | undefined =>
  headChanged(detected, bytes.subarray(0, HEAD_BYTES)) ??
  endChanged(detected, bytes.subarray(Math.max(0, bytes.length - TAIL_BYTES)));

/** Why a file's last bytes no longer end as the check found, or undefined. */
export function endChanged(detected: Detected | undefined, tail: Buffer): string | undefined {
  const missing = detected === undefined ? undefined : missingEnd(detected, tail);
  return missing
    ? `it changed after the check (it now looks truncated: ${missing}), so it was not sent; run again once it is complete`
    : undefined;
}

function fixFor(detected: Exclude<Detected, 'unknown'>): string {
  if (CONVERTIBLE.has(detected)) return 'convert it to JPEG, or pass --convert';
  const ext = EXTENSION_OF[detected];
  if (ext) return `rename it to .${ext}`;
  return 'fetch the original again';
}

/**
 * A file's first HEAD_BYTES and, when `wantTail` says its kind has an end marker, its last
 * TAIL_BYTES: one open and one or two reads. The callback API: fs/promises' FileHandle costs
 * several times as much per file in a 300,000-file check.
 */
export function readHeadAndTail(
  path: string,
  size: number,
  wantTail: (head: Buffer) => boolean,
): Promise<{ head: Buffer; tail: Buffer }> {
  return new Promise((resolve, reject) => {
    open(path, NON_BLOCKING_READ, (openError, fd) => {
      if (openError) return reject(openError);
      const done = (error: Error | null, result?: { head: Buffer; tail: Buffer }) =>
        close(fd, () => (error ? reject(error) : resolve(result!)));
      const head = Buffer.allocUnsafe(Math.min(size, HEAD_BYTES));
      read(fd, head, 0, head.length, 0, (headError, n) => {
        if (headError) return done(headError);
        const got = head.subarray(0, n);
        // A small file is whole in its head.
        if (size <= HEAD_BYTES || !wantTail(got))
          return done(null, { head: got, tail: got.subarray(Math.max(0, n - TAIL_BYTES)) });
        const tail = Buffer.allocUnsafe(TAIL_BYTES);
        read(fd, tail, 0, TAIL_BYTES, size - TAIL_BYTES, (tailError, m) =>
          tailError ? done(tailError) : done(null, { head: got, tail: tail.subarray(0, m) }),
        );
      });
    });
  });
}
