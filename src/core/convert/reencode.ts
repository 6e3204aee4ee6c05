import type { Sharp } from 'sharp';
import type { Detected } from '../files/sniff.js';
import { ReencodeError } from './reencode-error.js';

/**
 * --fit's sizes: a long side of 3,000 px first (KYC vendors ask for about 1080×1920; this
 * keeps fine print legible), then smaller; within each, JPEG quality step by step. Nothing
 * goes below the last of each: past that a document stops being readable.
 */
export const FIT_LONG_SIDES = [3000, 2400, 2000] as const;
export const FIT_QUALITIES = [90, 85, 80, 75, 70, 65, 60] as const;
/** --convert alone keeps the size and encodes once, at a quality that does not show. */
const CONVERT_QUALITY = 90;

/**
 * An image as JPEG: decoded (HEIC with libheif's wasm build, the rest with sharp), turned
 * upright by its EXIF orientation, flattened on white, and with `fit`, downscaled and lowered
 * in quality until it is at most `maxFileSize` bytes. EXIF is kept (orientation reset), so
 * capture dates survive. sharp and the HEIC decoder are loaded here, on first use only.
 */
export async function toJpeg(
  input: Buffer,
  kind: Detected,
  settings: { fit: boolean; maxFileSize: number },
): Promise<{ data: Buffer; steps: string }> {
  const { default: sharp } = await import('sharp');
  let image: Sharp;
  try {
    image =
      kind === 'heic' ? await decodeHeic(input, sharp) : sharp(input, { failOn: 'error' }).autoOrient().keepExif();
    image = image.flatten({ background: '#ffffff' });
    // Decoding fails here, not in the first encode, for a file sharp cannot read.
    if (kind !== 'heic') await sharp(input, { failOn: 'error' }).metadata();
  } catch (error) {
    throw new ReencodeError(`cannot decode it as ${kind} (${(error as Error).message})`);
  }
  const sides = settings.fit ? FIT_LONG_SIDES : [undefined];
  const qualities = settings.fit ? FIT_QUALITIES : [CONVERT_QUALITY];
  let smallest = Infinity;
  for (const side of sides) {
    const sized =
      side === undefined
        ? image
        : image.clone().resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true });
    for (const quality of qualities) {
      let data: Buffer;
      try {
        data = await sized.clone().jpeg({ quality }).toBuffer();
      } catch (error) {
        throw new ReencodeError(`cannot re-encode it (${(error as Error).message})`);
      }
      if (data.length <= settings.maxFileSize)
        return {
          data,
          steps: side === undefined ? `quality ${quality}` : `long side ≤ ${side} px, quality ${quality}`,
        };
      smallest = Math.min(smallest, data.length);
    }
  }
  if (!settings.fit)
    throw new ReencodeError(
      `its JPEG is ${smallest} bytes, over the limit of ${settings.maxFileSize}; pass --fit to downscale it`,
    );
  throw new ReencodeError(
    `still ${smallest} bytes at a long side of ${FIT_LONG_SIDES.at(-1)} px and quality ${FIT_QUALITIES.at(-1)}, over the limit of ${settings.maxFileSize}; any smaller would not be readable: crop or split it`,
  );
}

/** HEVC is not in sharp's prebuilt libvips: libheif's wasm build decodes it (its own rotation and mirroring applied) to pixels sharp encodes. */
async function decodeHeic(input: Buffer, sharp: (typeof import('sharp'))['default']): Promise<Sharp> {
  const { default: decode } = await import('heic-decode');
  const { width, height, data } = await decode({ buffer: input });
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 4 } });
}
