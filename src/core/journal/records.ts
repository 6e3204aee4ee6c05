import type { LinkedObject } from '../inputs/objects.js';

/** What every journal line says of one file. Never holds the API key. */
interface RecordBase {
  time: string;
  /** The run that wrote it (absent in journals from before run ids). */
  run?: string;
  /** The API root the file went to (absent in journals from before hosts were recorded: such a record counts for no host). */
  host?: string;
  org: string;
  /** What entity_id names when it is not an entity: an event, alert or case (absent: an entity). */
  object?: LinkedObject;
  entity_id: string;
  path: string;
  name: string;
  media_type: string | null;
  /** Known before sending for a request read whole; always known once uploaded. */
  sha256: string | null;
  bytes: number;
  /** For a file sent changed (--convert, --fit, --strip-location): the sha256 and bytes above are the original's; these, the copy's. */
  sent_name?: string;
  sent_bytes?: number;
  sent_sha256?: string;
  changes?: Array<'converted' | 'fitted' | 'location_stripped'>;
  /** For an object (an s3:// path): the ETag it was read at, unquoted, and its version in a versioned bucket; a rerun skips it by them without reading it again. */
  etag?: string;
  version_id?: string;
}

/** Written before a request leaves (a write-ahead record): with no outcome after it, the upload's outcome is unknown. */
export interface SendingRecord extends RecordBase {
  outcome: 'sending';
}

/** A file's final outcome in one run. */
export interface OutcomeRecord extends RecordBase {
  outcome: 'uploaded' | 'failed';
  status: number | null;
  attempts: number;
  possibly_duplicated?: true;
  error_code?: string | null;
  message?: string;
}

/** One line of the journal. */
export type JournalRecord = SendingRecord | OutcomeRecord;

/** What identifies "this file is already on that entity". */
export interface UploadIdentity {
  /** The API root; null for a record from before hosts were recorded, which matches no run. */
  host: string | null;
  org: string;
  /** Absent for an entity: keys of journals from before alerts and cases stay as they were. */
  object?: LinkedObject;
  entityId: string;
  name: string;
  mediaType: string | null;
}
