import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isPlainObject } from './sidecar.js';
import { boundedLines } from './lines.js';
import type { LinkedObject } from './route.js';

/** What every journal line says of one file. Never holds the API key. */
interface RecordBase {
  time: string;
  /** The run that wrote it (absent in journals from before run ids). */
  run?: string;
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
  org: string;
  /** Absent for an entity: keys of journals from before alerts and cases stay as they were. */
  object?: LinkedObject;
  entityId: string;
  name: string;
  mediaType: string | null;
}

// Compact fixed-size keys keep a journal of 300,000 uploads to a few tens of MB in memory.
const keyOf = (parts: unknown[]) => createHash('sha1').update(JSON.stringify(parts)).digest('base64');
// The same id names different things as an entity and as an alert: the object is part of the key.
const owner = (id: UploadIdentity) => (id.object ? [id.org, id.object, id.entityId] : [id.org, id.entityId]);
const identityKey = (id: UploadIdentity) => keyOf([...owner(id), id.name, id.mediaType]);
const contentKey = (id: UploadIdentity, sha256: string) => keyOf([...owner(id), id.name, id.mediaType, sha256]);
const sizeKey = (id: UploadIdentity, bytes: number) => keyOf([...owner(id), id.name, id.mediaType, bytes]);

/** A journal line is a record; anything longer is not one of ours. */
const MAX_LINE_BYTES = 1024 * 1024;
/** How many unusable lines are named in the warning. */
const NAMED_AT_MOST = 5;

/**
 * The append-only record of what was sent and what came of it. Each line is written with one
 * write(2) as it happens — a `sending` record before a request leaves, the outcome once known —
 * so it survives a crash or `kill -9`; an unusable line (a torn last line) is skipped on reading.
 * A journal that is not a regular file (`/dev/null`) is written to but never read.
 */
export class Journal {
  /** Identities uploaded, or sent without an answer, by earlier runs: their files are hashed to compare. */
  private readonly identities = new Set<string>();
  /** Uploads recorded by earlier runs, by content key: when each was stored (ms, NaN if unreadable). */
  private readonly uploads = new Map<string, number>();
  /** Sent by an earlier run with no outcome after: by identity and size, the sha256 if it was known. */
  private readonly pending = new Map<string, string | null>();
  private fd: number | undefined;
  /** A write was cut short (a full disk): the next record starts on a line of its own. */
  private torn = false;
  /** Lines that could not be used, the first few by number. */
  readonly unusable: { count: number; lines: number[] } = { count: 0, lines: [] };
  /** Uploads recorded by earlier runs. */
  uploadedBefore = 0;

  private constructor(readonly path: string) {}

  /** Reads what earlier runs recorded and opens the file for appending (creating it if needed). */
  static async open(path: string): Promise<Journal> {
    const journal = new Journal(path);
    const stats = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (stats?.isFile()) await journal.load();
    journal.fd = openSync(path, 'a');
    if (stats?.isFile()) journal.endWithNewline();
    return journal;
  }

  /** Whether an earlier run uploaded, or sent without an answer, a file of this identity (then its content decides). */
  mayHave(id: UploadIdentity): boolean {
    return this.identities.has(identityKey(id));
  }

  /** When an earlier run uploaded this exact content under this identity (ISO time, '' if not readable), or undefined if none did. */
  uploadedAt(id: UploadIdentity, sha256: string): string | undefined {
    const time = this.uploads.get(contentKey(id, sha256));
    if (time === undefined) return undefined;
    return Number.isNaN(time) ? '' : new Date(time).toISOString();
  }

  /** Whether an earlier run sent this file and never learnt whether it was stored. */
  unknownOutcome(id: UploadIdentity, bytes: number, sha256: string): boolean {
    const sent = this.pending.get(sizeKey(id, bytes));
    return sent !== undefined && (sent === null || sent === sha256);
  }

  /** Appends records in one write; throws the file system's error (a full disk), for the caller to stop on. */
  record(...records: JournalRecord[]): void {
    if (this.fd === undefined) return;
    const text = Buffer.from(`${this.torn ? '\n' : ''}${records.map((r) => `${JSON.stringify(r)}\n`).join('')}`);
    this.torn = true; // until the write is known to be whole
    if (writeSync(this.fd, text) < text.length) {
      throw Object.assign(new Error('no space left on device (the write was cut short)'), { code: 'ENOSPC' });
    }
    this.torn = false;
  }

  /** Flushes to disk and closes; throws when that fails. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fsyncSync(fd);
    } catch (error) {
      // A device such as /dev/null cannot be synced, and holds nothing to lose.
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL' && (error as NodeJS.ErrnoException).code !== 'ENOTSUP') throw error;
    } finally {
      closeSync(fd);
    }
  }

  private async load() {
    for await (const read of journalLines(this.path)) {
      if (read.record) this.apply(read.record);
      else if (read.text?.trim() !== '') this.unusableLine(read.line);
    }
  }

  private apply(record: JournalRecord) {
    const id = { org: record.org, ...(record.object && { object: record.object }), entityId: record.entity_id, name: record.name, mediaType: record.media_type };
    const sized = sizeKey(id, record.bytes);
    if (record.outcome === 'sending') {
      this.pending.set(sized, record.sha256);
      this.identities.add(identityKey(id));
      return;
    }
    // A failure whose last attempt went unanswered is as unknown as a send with no outcome.
    if (record.outcome === 'failed' && record.possibly_duplicated) this.pending.set(sized, record.sha256);
    else this.pending.delete(sized);
    if (record.outcome === 'uploaded' && record.sha256 !== null) {
      this.identities.add(identityKey(id));
      this.uploads.set(contentKey(id, record.sha256), Date.parse(record.time));
      this.uploadedBefore++;
    }
  }

  private unusableLine(line: number) {
    this.unusable.count++;
    if (this.unusable.lines.length < NAMED_AT_MOST) this.unusable.lines.push(line);
  }

  /** After a torn write, the next record must start on a line of its own. */
  private endWithNewline() {
    const size = fstatSync(this.fd!).size;
    if (size === 0) return;
    const last = Buffer.alloc(1);
    const readFd = openSync(this.path, 'r');
    try {
      readSync(readFd, last, 0, 1, size - 1);
    } finally {
      closeSync(readFd);
    }
    if (last[0] !== 0x0a) writeSync(this.fd!, '\n');
  }
}

/** One line of a journal: its text (undefined when over the line limit) and the record it holds, if it is one. */
export interface JournalLine {
  line: number;
  text: string | undefined;
  record: JournalRecord | undefined;
}

/** Reads a journal line by line, in bounded memory. */
export async function* journalLines(path: string): AsyncGenerator<JournalLine> {
  for await (const read of boundedLines(createReadStream(path), MAX_LINE_BYTES)) {
    if (!('text' in read)) {
      yield { line: read.line, text: undefined, record: undefined };
      continue;
    }
    let value: unknown;
    try {
      value = read.text.trim() === '' ? undefined : JSON.parse(read.text);
    } catch {
      value = undefined;
    }
    yield { line: read.line, text: read.text, record: isJournalRecord(value) ? value : undefined };
  }
}

/** Whether a parsed line is a record this journal can use. */
function isJournalRecord(value: unknown): value is JournalRecord {
  if (!isPlainObject(value)) return false;
  const { outcome, org, object, entity_id: entityId, name, media_type: mediaType, sha256, bytes } = value;
  return (
    (outcome === 'sending' || outcome === 'uploaded' || outcome === 'failed') &&
    typeof org === 'string' &&
    (object === undefined || object === 'events' || object === 'alerts' || object === 'cases') &&
    typeof entityId === 'string' &&
    typeof name === 'string' &&
    (mediaType === null || typeof mediaType === 'string') &&
    (sha256 === null || typeof sha256 === 'string') &&
    typeof bytes === 'number'
  );
}
