import { extname } from 'node:path';

/** Extensions Unit21 accepts, with the Content-Type sent for each. `.jpeg`/`.tif` are aliases. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  txt: 'text/plain',
  pdf: 'application/pdf',
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  wmv: 'video/x-ms-wmv',
  avi: 'video/x-msvideo',
  mkv: 'video/x-matroska',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  tiff: 'image/tiff',
  tif: 'image/tiff',
  gif: 'image/gif',
  raw: 'image/x-raw',
  eps: 'application/postscript',
};

const IMAGES = new Set(['png', 'jpg', 'jpeg', 'tiff', 'tif', 'gif', 'raw', 'eps']);

/** Extensions Unit21 does not take that --convert turns into JPEG. */
export const CONVERTIBLE_EXTENSIONS: ReadonlySet<string> = new Set(['heic', 'heif', 'avif', 'webp']);

/** Image extensions --fit can re-encode and --strip-location can clean. */
export const FITTABLE_EXTENSIONS: ReadonlySet<string> = new Set(['jpg', 'jpeg', 'png', 'tiff', 'tif']);

/** The same name with a .jpg extension, for a file sent as JPEG (`IMG_0042.heic` → `IMG_0042.jpg`); a .jpg/.jpeg name stays. */
export function jpegName(fileName: string): string {
  const ext = extname(fileName);
  if (/^\.jpe?g$/i.test(ext)) return fileName;
  return `${ext ? fileName.slice(0, -ext.length) : fileName}.jpg`;
}

/** The supported extensions as documented (aliases listed after their canonical names). */
export const SUPPORTED_EXTENSIONS = Object.keys(CONTENT_TYPES);

/** Lower-case extension without the dot, or '' when the name has none. */
export function extensionOf(fileName: string): string {
  return extname(fileName).slice(1).toLowerCase();
}

/** Content-Type for a supported file name, or undefined when Unit21 does not take it. */
export function contentTypeOf(fileName: string): string | undefined {
  return CONTENT_TYPES[extensionOf(fileName)];
}

/** Whether the file is an image, the only kind the file-name conventions apply to. */
export function isImage(fileName: string): boolean {
  return IMAGES.has(extensionOf(fileName));
}

/** Unit21's documented per-file limit. */
export const DEFAULT_MAX_FILE_SIZE = 5_000_000;

/** Our per-request ceilings (the API documents none). */
export const MAX_FILES_PER_REQUEST = 10;
export const MAX_BYTES_PER_REQUEST = 20_000_000;

/**
 * Files and requests of up to this are read whole and sent as one buffer: undici sends a buffer
 * for a fraction of a stream's cost, and a file read whole is read once, by a reader thread,
 * for its duplicate check, its hash and its body. It takes a file at Unit21's limit, or a batch
 * of ten 500 KB scans. Each request in flight then holds about its size (a JSON body, base64,
 * about 1.4 times that), and so do the files read ahead of their turn (jobs.ts bounds those).
 * Larger files and requests stream.
 */
export const WHOLE_AT_MOST = 5 * 1024 * 1024;
