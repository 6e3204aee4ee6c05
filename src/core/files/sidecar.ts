import { close, open, read } from 'node:fs';
import { promisify } from 'node:util';
import { NON_BLOCKING_READ } from './file-identity.js';
import { jsonValueProblem, textProblem } from '../shared/well-formed.js';

// The callback API: fs/promises opens a FileHandle per call, which costs far more per file.
const openFile = promisify(open);
const closeFile = promisify(close);
const readInto = (fd: number, buffer: Buffer, at: number) =>
  new Promise<number>((resolve, reject) =>
    read(fd, buffer, at, buffer.length - at, null, (error, n) => (error ? reject(error) : resolve(n))),
  );

/** A sidecar holds a few fields; a larger one is refused rather than loaded and sent upstream. */
export const MAX_SIDECAR_BYTES = 64 * 1024;

/** What a `<file>.json` sidecar adds to its file. */
export interface FileMetadata {
  mediaType?: string;
  customData?: Record<string, unknown>;
}

/** Path of the sidecar that belongs to a file. */
export const sidecarPathOf = (filePath: string): string => `${filePath}.json`;

/** The file a sidecar would belong to, or undefined for a path that cannot be a sidecar. */
export const sidecarOwnerOf = (path: string): string | undefined =>
  path.endsWith('.json') ? path.slice(0, -'.json'.length) : undefined;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a file's sidecar, or returns undefined when there is none. Accepts both forms:
 * flat (`{"media_type": …, "source": …}`) and nested (`{"media_type": …, "custom_data": {…}}`);
 * other top-level keys merge into custom_data. Throws an Error whose message says what to fix.
 */
export async function readSidecar(filePath: string): Promise<FileMetadata | undefined> {
  let text: string;
  try {
    const bytes = await readAtMost(sidecarPathOf(filePath), MAX_SIDECAR_BYTES);
    if (!bytes)
      throw new Error(
        `the sidecar is over ${MAX_SIDECAR_BYTES / 1024} KB; a sidecar holds media_type and a few custom_data fields`,
      );
    text = bytes.toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    const { code } = error as NodeJS.ErrnoException;
    throw new Error(code ? `cannot read the sidecar (${code})` : (error as Error).message);
  }
  return parseSidecar(text);
}

/** A sidecar's text as metadata (on disk or beside an object in a bucket); throws an Error whose message says what to fix. */
export function parseSidecar(text: string): FileMetadata {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, '')); // editors on Windows add a BOM
  } catch (error) {
    throw new Error(`sidecar is not valid JSON (${(error as Error).message}); fix or remove it`);
  }
  return metadataFrom(parsed, 'sidecar');
}

/** A file's bytes when it holds at most `max`, else undefined; opened without blocking, so a pipe fails instead of waiting. */
async function readAtMost(path: string, max: number): Promise<Buffer | undefined> {
  const fd = await openFile(path, NON_BLOCKING_READ);
  try {
    const buffer = Buffer.allocUnsafe(max + 1);
    let filled = 0;
    for (;;) {
      const n = await readInto(fd, buffer, filled);
      filled += n;
      if (n === 0 || filled > max) break;
    }
    return filled > max ? undefined : buffer.subarray(0, filled);
  } finally {
    await closeFile(fd);
  }
}

/**
 * Validates a metadata object (sidecar, manifest row, report row) into media_type and
 * custom_data: the one check of both for every source, so what is sent is well-formed text
 * nested no deeper than MAX_CUSTOM_DATA_DEPTH.
 */
export function metadataFrom(value: unknown, what: string): FileMetadata {
  if (!isPlainObject(value)) throw new Error(`${what} must hold a JSON object`);
  const { media_type: mediaType, custom_data: nested, ...rest } = value;
  if (mediaType !== undefined && (typeof mediaType !== 'string' || mediaType === '')) {
    throw new Error(`${what} "media_type" must be a non-empty string`);
  }
  const notText = mediaType === undefined ? undefined : textProblem(mediaType, `${what} "media_type"`);
  if (notText) throw new Error(notText);
  if (nested !== undefined && !isPlainObject(nested)) {
    throw new Error(`${what} "custom_data" must be a JSON object`);
  }
  const customData = { ...nested, ...rest };
  if ('media_type' in customData) {
    throw new Error(`${what} custom_data cannot hold "media_type"; set it at the top level`);
  }
  const unsendable = jsonValueProblem(customData, `${what} custom_data`);
  if (unsendable) throw new Error(unsendable);
  return {
    ...(mediaType !== undefined && { mediaType }),
    ...(Object.keys(customData).length > 0 && { customData }),
  };
}
