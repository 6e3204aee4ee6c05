import type { MediaTypeSource } from './media-type.js';
import type { Problem } from '../shared/errors.js';
import type { LinkedObject } from './objects.js';
import type { Detected } from '../files/sniff.js';
import type { FileIdentity } from '../files/file-identity.js';
import type { StoredObject } from '../s3/store.js';

/** One file that passed preflight, with everything needed to send it. */
export interface PlannedFile {
  /** As the user wrote or would write it. */
  path: string;
  absPath: string;
  /** The media `name` sent: the file's own base name. */
  name: string;
  entityId: string;
  /** What entityId names when not an entity: an event, an alert or a case. */
  object?: LinkedObject;
  mediaType?: string;
  mediaTypeSource: MediaTypeSource;
  customData?: Record<string, unknown>;
  bytes: number;
  contentType: string;
  /** What its first bytes say it is; absent when not checked (--no-sniff, or txt and raw, which have no signature). */
  detected?: Detected;
  /** What the check saw of the file on disk: it is read later only if it is still that file (absent for a changed copy of the run's own). */
  identity?: FileIdentity;
  /** An object in a bucket (an s3:// path): read from there, as the check saw it (its ETag), instead of from disk. */
  stored?: StoredObject;
  /** What to do to it before sending (--convert, --fit, --strip-location); `name` and `contentType` already say what is sent. */
  fix?: Fix;
  /**
   * Set once it was changed: the original on disk (or in its bucket, `stored`). `absPath` and
   * `bytes` then describe the changed copy that is sent, from the run's temporary folder.
   */
  original?: { absPath: string; bytes: number; sha256: string; changes: Change[]; stored?: StoredObject };
  /**
   * An object a fix read whole and left as it was: the run's copy of those bytes (of the version
   * checked), in its temporary folder, which its body reads instead of the bucket. Everything
   * else still describes the object; events, journal and report say nothing of the copy.
   */
  localCopy?: string;
}

/** Where every event and record says a file goes: its id, and what the id names when not an entity. */
export const target = (file: Pick<PlannedFile, 'entityId' | 'object'>) => ({
  entity_id: file.entityId,
  ...(file.object && { object: file.object }),
});

/** What every skipped event says of a file. */
export const known = (file: PlannedFile) => ({
  ...target(file),
  media_type: file.mediaType ?? null,
  bytes: file.original?.bytes ?? file.bytes,
});

/** The version of the object a file was read from (a changed copy's original's), as the report and journal say it; undefined for a local file. */
export function objectVersion(file: Pick<PlannedFile, 'stored' | 'original'>) {
  const stored = file.original?.stored ?? file.stored;
  if (!stored) return undefined;
  return { etag: stored.etag.replace(/^"|"$/g, '') || null, version_id: stored.versionId ?? null };
}

/** Changes the run may make to an image before sending it. */
export interface Fix {
  /** HEIC/HEIF, AVIF or WebP to JPEG. */
  convert?: true;
  /** Over --max-file-size: downscaled and re-encoded as JPEG until it fits. */
  fit?: true;
  /** GPS metadata (EXIF and XMP) taken out, if it has any. */
  stripLocation?: true;
}

/** What was done to a file that was sent changed, as events, journal and report say it. */
export type Change = 'converted' | 'fitted' | 'location_stripped';

/** Why a file is not sent although the run goes on. */
export type SkipReason =
  'unsupported' | 'link_outside' | 'invalid' | 'journal' | 'duplicate' | 'not_sent' | 'unknown_outcome';

/** What preflight made of one input, in the order found. */
export type Checked =
  | { kind: 'file'; file: PlannedFile }
  /** Found by a walk or glob but not to be sent (not something Unit21 takes, or a link out of the tree): skipped, not an error. */
  | { kind: 'skip'; path: string; reason: 'unsupported' | 'link_outside'; message: string }
  /** Invalid input: refuses the run, or is skipped as `invalid` with skipInvalid. */
  | { kind: 'problem'; problem: Problem }
  /** Said once per run, e.g. the first time an unrecognised media_type appears; `at`: the input it was found in. */
  | { kind: 'warning'; message: string; at?: InputPlace };

/** An input a message is about: a file, a sidecar, or a manifest and its line. */
export interface InputPlace {
  path: string;
  line?: number;
}
