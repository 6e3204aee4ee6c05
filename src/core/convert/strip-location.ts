import { crc32 } from 'node:zlib';

/**
 * Takes GPS metadata out of a JPEG, PNG or TIFF without re-encoding it: the EXIF GPS block is
 * zeroed and unlinked, XMP GPS properties are blanked with spaces. Everything keeps its place
 * and length, so the pixels and all other metadata are exactly as they were. Returns the
 * changed copy, or undefined when there was no GPS metadata to take out.
 */
export function stripLocation(input: Buffer): Buffer | undefined {
  const out = Buffer.from(input);
  let changed: boolean;
  if (out[0] === 0xff && out[1] === 0xd8) changed = stripJpeg(out);
  else if (out.subarray(0, 8).equals(PNG_SIGNATURE)) changed = stripPng(out);
  else changed = stripTiff(out, true);
  return changed ? out : undefined;
}

const EXIF_HEADER = Buffer.from('Exif\0\0', 'latin1');
const XMP_HEADER = Buffer.from('http://ns.adobe.com/xap/1.0/\0', 'latin1');
const PNG_SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

/** The APP1 segments before the image data: EXIF and XMP. */
function stripJpeg(jpeg: Buffer): boolean {
  let changed = false;
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff) {
    const marker = jpeg[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break; // the image data starts: no metadata after it
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    const end = at + 2 + jpeg.readUInt16BE(at + 2);
    if (end > jpeg.length) break;
    if (marker === 0xe1) {
      const body = jpeg.subarray(at + 4, end);
      if (body.subarray(0, EXIF_HEADER.length).equals(EXIF_HEADER))
        changed = stripTiff(body.subarray(EXIF_HEADER.length), true) || changed;
      else if (body.subarray(0, XMP_HEADER.length).equals(XMP_HEADER))
        changed = blankXmpGps(body.subarray(XMP_HEADER.length)) || changed;
    }
    at = end;
  }
  return changed;
}

/** The eXIf chunk (EXIF) and an uncompressed XMP iTXt chunk; each changed chunk gets its CRC again. */
function stripPng(png: Buffer): boolean {
  let changed = false;
  for (let at = 8; at + 12 <= png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (data.length < length) break;
    let chunkChanged = false;
    if (type === 'eXIf') chunkChanged = stripTiff(data, true);
    const xmpKeyword = 'XML:com.adobe.xmp\0';
    // iTXt: keyword, compression flag and method, language tag, translated keyword, then the text.
    if (
      type === 'iTXt' &&
      data.toString('latin1', 0, xmpKeyword.length) === xmpKeyword &&
      data[xmpKeyword.length] === 0
    )
      chunkChanged = blankXmpGps(data.subarray(xmpKeyword.length + 2));
    if (chunkChanged) {
      png.writeUInt32BE(crc32(png.subarray(at + 4, at + 8 + length)), at + 8 + length);
      changed = true;
    }
    if (type === 'IEND') break;
    at += 12 + length;
  }
  return changed;
}

// Bytes per value of each TIFF field type (1 BYTE … 12 DOUBLE).
const TYPE_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8];
const GPS_IFD_TAG = 0x8825;
const XMP_TAG = 700;

/** A TIFF structure (a TIFF file, or EXIF data): the GPS IFD is zeroed and its link from IFD0 removed; XMP in IFD0 (`inFile`) blanked. */
function stripTiff(tiff: Buffer, inFile: boolean): boolean {
  if (tiff.length < 8) return false;
  const le = tiff.toString('latin1', 0, 2) === 'II';
  if (!le && tiff.toString('latin1', 0, 2) !== 'MM') return false;
  const u16 = (at: number) => (le ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (le ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const w16 = (value: number, at: number) => (le ? tiff.writeUInt16LE(value, at) : tiff.writeUInt16BE(value, at));
  if (u16(2) !== 42) return false;
  const ifd0 = u32(4);
  if (ifd0 + 2 > tiff.length) return false;
  const count = u16(ifd0);
  const entriesEnd = ifd0 + 2 + count * 12;
  if (entriesEnd + 4 > tiff.length) return false;
  /** Where an entry's value lies: in the entry itself when it fits in 4 bytes. */
  const valueOf = (entry: number) => {
    const size = (TYPE_SIZE[u16(entry + 2)] ?? 1) * u32(entry + 4);
    const start = size <= 4 ? entry + 8 : u32(entry + 8);
    return { start, end: Math.min(start + size, tiff.length) };
  };
  let changed = false;
  for (let i = 0; i < count; i++) {
    const entry = ifd0 + 2 + i * 12;
    const tag = u16(entry);
    if (tag === XMP_TAG && inFile) {
      const { start, end } = valueOf(entry);
      if (start < end) changed = blankXmpGps(tiff.subarray(start, end)) || changed;
    }
    if (tag !== GPS_IFD_TAG) continue;
    zeroIfd(u32(entry + 8));
    // The entries after it, and the next-IFD link, move up one place; the freed place is zeroed.
    tiff.copyWithin(entry, entry + 12, entriesEnd + 4);
    tiff.fill(0, entriesEnd - 8, entriesEnd + 4);
    w16(count - 1, ifd0);
    return true;
  }
  return changed;

  /** A GPS IFD's values (in the entries or out of line) and the IFD itself, to zeros. */
  function zeroIfd(at: number) {
    if (at + 2 > tiff.length) return;
    const n = u16(at);
    const end = at + 2 + n * 12 + 4;
    if (end > tiff.length) return;
    for (let i = 0; i < n; i++) {
      const value = valueOf(at + 2 + i * 12);
      if (value.end > value.start) tiff.fill(0, value.start, value.end);
    }
    tiff.fill(0, at, end);
  }
}

// Properties named GPS… in any namespace (exif:GPSLatitude, drone-dji:GpsLongitude), as attributes or elements.
const GPS_ATTRIBUTE = /\s[\w.-]+:gps\w*\s*=\s*("[^"]*"|'[^']*')/gi;
const GPS_ELEMENT = /<([\w.-]+:gps\w*)\b[^>]*?(\/>|>[\s\S]*?<\/\1\s*>)/gi;

/** XMP packet text, in place: each GPS property becomes as many spaces, which XML reads as nothing. */
function blankXmpGps(xmp: Buffer): boolean {
  const text = xmp.toString('latin1');
  const blanked = text
    .replace(GPS_ELEMENT, (m) => ' '.repeat(m.length))
    .replace(GPS_ATTRIBUTE, (m) => ' '.repeat(m.length));
  if (blanked === text) return false;
  xmp.write(blanked, 0, 'latin1');
  return true;
}
