import type { Readable } from 'node:stream';
import type { PlannedFile } from '../plan.js';

/** A request body built fresh for each attempt: a stream cannot be replayed. */
export interface RequestBody {
  headers: Record<string, string>;
  body: Readable;
  /** Exact byte length, sent as Content-Length. */
  length: number;
}

/** Both formats carry the same information; this is the multipart metadata part (custom_data flattened). */
export function flatMetadata(file: PlannedFile): Record<string, unknown> | undefined {
  if (file.mediaType === undefined && file.customData === undefined) return undefined;
  return { ...(file.mediaType !== undefined && { media_type: file.mediaType }), ...file.customData };
}
