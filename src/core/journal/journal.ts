import {
  closeSync,
  createReadStream,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { isPlainObject } from '../files/sidecar.js';
import { boundedLines } from '../shared/lines.js';
import { linkedObject } from '../inputs/route.js';
import type { JournalRecord, UploadIdentity } from './records.js';
import { DiskTable } from '../disk/disk-table.js';
import { indexDirOf, isRecordOf, JournalIndex, recordKey } from './lookup-index.js';
import { openForAppend } from '../shared/writable-file.js';
import { safeJson } from '../shared/safe-text.js';
import { UsageError } from '../shared/errors.js';

/** A journal line is a record; anything longer is not one of ours. */
const MAX_LINE_BYTES = 1024 * 1024;
/** How many unusable lines are named in the warning. */
const NAMED_AT_MOST = 5;

/** What a journal is opened for: the run's API host, and whether records from before records named one count as sent there. */
interface JournalSettings {
  host: string;
  adoptOldRecords: boolean;
}

/**
 * The append-only record of what was sent and what came of it. Each line is written with one
 * write(2) as it happens — a `sending` record before a request leaves, the outcome once known —
 * so it survives a crash or `kill -9`; an unusable line (a torn last line) is skipped on reading.
 * A journal that is not a regular file (`/dev/null`) is written to but never read.
 */
export class Journal {
  /** What earlier runs recorded, on disk beside the journal; none for a journal that is not a regular file. */
  private index: JournalIndex | undefined;
  private fd: number | undefined;
  /** A write was cut short (a full disk): the next record starts on a line of its own. */
  private torn = false;
  /** Made by this run: there was no journal before. */
  private made = false;
  /** What this run wrote to it, in bytes, and the file it wrote to: the journal holds only this run's lines while it is so. */
  private written = 0;
  private inode: number | undefined;
  /** Files this run sent whose outcome it has not recorded, by record key (two files may share one). */
  private readonly unanswered = new Map<string, number>();
  /** A record of this run says a file was stored, or may have been. */
  private storedAny = false;

  private constructor(readonly path: string) {}

  /** Opens the file for appending (creating it if needed) and reads what earlier runs recorded that its index lacks. */
  static async open(path: string, run?: JournalSettings): Promise<Journal> {
    const journal = new Journal(path);
    const stats = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    journal.fd = openForAppend(path, '--journal');
    journal.made = stats === undefined;
    journal.inode = fstatSync(journal.fd).ino;
    if (stats && !stats.isFile()) return journal;
    if (stats) journal.endWithNewline();
    const read = (index: JournalIndex) => journal.readInto(index);
    journal.index = await JournalIndex.open(path, read);
    if (run && journal.index.state.hostless > 0) {
      if (!run.adoptOldRecords) {
        journal.close();
        journal.index.close();
        throw hostlessRecords(path, journal.index.state.hostless, run.host);
      }
      journal.adopted = await journal.adopt(run.host);
      journal.index.remove();
      journal.index = await JournalIndex.open(path, read);
    }
    // A compaction that fails (a full disk) leaves the journal as it was, to be compacted another time.
    const compacted = journal.index.overdue
      ? await journal.compact(journal.index.dir).catch(() => undefined)
      : undefined;
    if (compacted) {
      journal.compacted = compacted;
      journal.index.remove();
      journal.index = await JournalIndex.open(path, read);
    }
    return journal;
  }

  /**
   * The journal as a dry run reads it: never created, locked, compacted or rewritten, and
   * indexed in `indexDir` (the dry run's own folder), so a run sending on it meanwhile is not
   * disturbed. Records from before records named their API host count as `run.host`'s when
   * adopted. Undefined when there is no journal yet.
   */
  static async openToRead(path: string, run: JournalSettings, indexDir: string): Promise<Journal | undefined> {
    const stats = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!stats?.isFile()) return undefined;
    const journal = new Journal(path);
    if (run.adoptOldRecords) journal.hostOfOldRecords = run.host;
    journal.index = await JournalIndex.open(path, (index) => journal.readInto(index), indexDir);
    if (journal.index.state.hostless > 0) {
      journal.index.close();
      throw hostlessRecords(path, journal.index.state.hostless, run.host);
    }
    return journal;
  }

  /** For a journal read but not written (a dry run's): the host its records from before records named one are taken as sent to. */
  private hostOfOldRecords: string | undefined;

  /** Records from before records named their API host, taken on opening as the run's host's (the default journal of that host, or --adopt-old-records). */
  adopted: number | undefined;

  /** Lines before and after the journal was compacted on opening, when it was. */
  compacted: { before: number; after: number } | undefined;

  /** Uploads recorded by earlier runs. */
  get uploadedBefore(): number {
    return this.index?.state.uploadedBefore ?? 0;
  }

  /** Records that name no API host, written before records did: they count for no host (a run adopts them, or refuses the journal). */
  get hostless(): number {
    return this.index?.state.hostless ?? 0;
  }

  /** Lines that could not be used, the first few by number. */
  get unusable(): { count: number; lines: number[] } {
    return this.index?.state.unusable ?? { count: 0, lines: [] };
  }

  /** Whether an earlier run uploaded, or sent without an answer, a file of this identity (then its content decides). */
  mayHave(id: UploadIdentity): boolean {
    return this.index?.mayHave(id) ?? false;
  }

  /** When an earlier run uploaded this exact content under this identity (ISO time, '' if not readable), or undefined if none did. */
  uploadedAt(id: UploadIdentity, sha256: string): string | undefined {
    const time = this.index?.uploadedAt(id, sha256);
    if (time === undefined) return undefined;
    return Number.isNaN(time) ? '' : new Date(time).toISOString();
  }

  /**
   * The sha256 an earlier run recorded uploading this object with under this identity, from this
   * URL at this ETag (and version, when both say one): the same ETag at the same URL is the same
   * bytes, known without reading them. Undefined when no record says so (or it cannot be read).
   */
  uploadedObject(
    id: UploadIdentity,
    object: { path: string; bytes: number; etag: string; versionId?: string },
  ): string | undefined {
    const at = this.index?.objectUploadAt(id, object.path, object.etag);
    if (at === undefined) return undefined;
    // The line the index points at, checked: a journal rewritten since (by a run sending while a dry run reads it) says otherwise.
    const record = this.recordAt(at);
    const matches =
      record?.outcome === 'uploaded' &&
      record.sha256 !== null &&
      record.path === object.path &&
      record.bytes === object.bytes &&
      record.etag === object.etag &&
      isRecordOf(record, id) &&
      (record.version_id === undefined || object.versionId === undefined || record.version_id === object.versionId);
    return matches ? record.sha256! : undefined;
  }

  /** Whether an earlier run sent this file and never learnt whether it was stored. */
  unknownOutcome(id: UploadIdentity, bytes: number, sha256: string): boolean {
    return this.index?.unknownOutcome(id, bytes, sha256) ?? false;
  }

  /** Appends records in one write; throws the file system's error (a full disk), for the caller to stop on. */
  record(...records: JournalRecord[]): void {
    if (this.fd === undefined) return;
    const text = Buffer.from(`${this.torn ? '\n' : ''}${records.map((r) => `${safeJson(r)}\n`).join('')}`);
    this.torn = true; // until the write is known to be whole
    writeWhole(this.fd, text);
    this.written += text.length;
    this.torn = false;
    for (const record of records) this.noteOfRun(record);
  }

  private noteOfRun(record: JournalRecord): void {
    const key = recordKey(record);
    const sent = this.unanswered.get(key) ?? 0;
    if (record.outcome === 'sending') return void this.unanswered.set(key, sent + 1);
    if (sent > 1) this.unanswered.set(key, sent - 1);
    else this.unanswered.delete(key);
    if (record.outcome === 'uploaded' || record.possibly_duplicated) this.storedAny = true;
  }

  /**
   * Once closed, removes a journal this run made whose records cannot matter to a later run:
   * every file it sent was answered, and none was (or may have been) stored — a mistyped host,
   * a refused key. Written ahead all the same, so a crash still leaves them. Returns whether it did.
   */
  removeIfUnneeded(): boolean {
    if (this.fd !== undefined || !this.made || this.torn || this.storedAny || this.unanswered.size > 0) return false;
    // Another run that took the lock over (this one paused past its renewal) may have written to it, or replaced it.
    const now = statOrUndefined(this.path);
    if (now === undefined || now.ino !== this.inode || now.size !== this.written) return false;
    // The index first: a journal without its index is rebuilt, an index without its journal is never read.
    rmSync(indexDirOf(this.path), { recursive: true, force: true });
    rmSync(this.path, { force: true });
    return true;
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
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL' && (error as NodeJS.ErrnoException).code !== 'ENOTSUP')
        throw error;
    } finally {
      closeSync(fd);
    }
  }

  /** Lets go of the index of a journal read but not written (a dry run's). */
  closeIndex(): void {
    this.index?.close();
    this.index = undefined;
    this.stopReading();
  }

  /** The journal open for reading records where the index points, once one is needed. */
  private reading: number | undefined;

  /** The record on the line starting at byte `at`, as the index read it, or undefined if that is no record or cannot be read (its file is then hashed). */
  private recordAt(at: number): JournalRecord | undefined {
    try {
      this.reading ??= openSync(this.path, 'r');
      const record = parsedRecord(lineAt(this.reading, at));
      return record && this.withOldHost(record);
    } catch {
      return undefined;
    }
  }

  private stopReading() {
    if (this.reading !== undefined) closeSync(this.reading);
    this.reading = undefined;
  }

  /** Brings the index up to the journal's end, with this run's records: the next run reads none of them again. Throws when that fails (the index is then gone, to be rebuilt). */
  async indexRun(): Promise<void> {
    if (this.fd !== undefined) throw new Error('Journal.indexRun before close()');
    const { index } = this;
    if (!index) return;
    this.index = undefined;
    this.stopReading();
    try {
      await index.catchUp(this.path, (into) => this.readInto(into));
    } finally {
      index.close();
    }
  }

  /**
   * Rewrites the journal with only its live lines: every upload, and each file's last record
   * when that is a send or a failure (what a resume must know). Lines that are no record go.
   */
  private async compact(workDir: string): Promise<{ before: number; after: number }> {
    const counts = DiskTable.create(join(workDir, 'records-per-file'));
    let [before, after] = [0, 0];
    try {
      for await (const { record } of journalLines(this.path)) {
        if (!record) continue;
        const key = recordKey(record);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await this.rewrite(async function* (lines) {
        for await (const { record, text } of lines) {
          if (text?.trim() === '') continue;
          before++;
          if (!record) continue;
          const key = recordKey(record);
          const later = counts.get(key)! - 1;
          counts.set(key, later);
          if (record.outcome !== 'uploaded' && later > 0) continue;
          after++;
          yield text!;
        }
      });
    } finally {
      counts.close();
    }
    return { before, after };
  }

  /**
   * Rewrites the journal with `host` in every record that names none: the host a journal of
   * one host (the default one) or the user says they went to. Returns how many records were so.
   */
  private async adopt(host: string): Promise<number> {
    let adopted = 0;
    await this.rewrite(async function* (lines) {
      for await (const { record, text } of lines) {
        if (text === undefined) continue;
        if (!record || record.host !== undefined) {
          yield text;
          continue;
        }
        const { time, run, ...rest } = record;
        adopted++;
        yield safeJson({ time, ...(run !== undefined && { run }), host, ...rest });
      }
    });
    return adopted;
  }

  /**
   * Replaces the journal with the lines `keep` makes of its own: written beside it, synced and
   * renamed over it, so a crash leaves the journal as it was; then appended to as before.
   */
  private async rewrite(keep: (lines: AsyncIterable<JournalLine>) => AsyncIterable<string>): Promise<void> {
    const temporary = `${this.path}.rewrite-${process.pid}`;
    try {
      const out = openSync(temporary, 'w');
      try {
        let batch: string[] = [];
        for await (const line of keep(journalLines(this.path))) {
          batch.push(line);
          if (batch.length === 1000) {
            writeWhole(out, linesOf(batch));
            batch = [];
          }
        }
        writeWhole(out, linesOf(batch));
        fsyncSync(out);
      } finally {
        closeSync(out);
      }
      renameSync(temporary, this.path);
    } finally {
      rmSync(temporary, { force: true });
    }
    // The file open for appending is the one renamed away.
    closeSync(this.fd!);
    this.fd = openSync(this.path, 'a');
  }

  /** The lines after what the index holds, read into it. */
  private async readInto(index: JournalIndex) {
    const { state } = index;
    const end = (await stat(this.path)).size;
    if (end > state.covered) {
      for await (const read of journalLines(this.path, { start: state.covered, end, firstLine: state.lines })) {
        const record = read.record && this.withOldHost(read.record);
        if (record) index.add(record, read.at);
        else if (read.text?.trim() !== '') {
          state.unusable.count++;
          if (state.unusable.lines.length < NAMED_AT_MOST) state.unusable.lines.push(read.line);
        }
        state.lines = read.line;
      }
    }
    state.covered = end;
  }

  /** A record from before records named their API host, as a dry run takes it: sent to its host (when given). */
  private withOldHost(record: JournalRecord): JournalRecord {
    return this.hostOfOldRecords !== undefined && record.host === undefined
      ? { ...record, host: this.hostOfOldRecords }
      : record;
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

/** What a run says of a journal's lines that are no record. */
export function unusableLinesWarning(journal: Pick<Journal, 'path' | 'unusable'>): string {
  const { count, lines } = journal.unusable;
  const named = `line${lines.length === 1 ? '' : 's'} ${lines.join(', ')}${count > lines.length ? ` and ${count - lines.length} more` : ''}`;
  return `${journal.path}: ${count === 1 ? 'one line is' : `${count} lines are`} not a journal record (${named}), skipped; a line cut short by a crash looks like this`;
}

/** A journal with records that say not where their files went, which this run may not take as its host's. */
function hostlessRecords(path: string, count: number, host: string): UsageError {
  return new UsageError(
    `--journal: ${path} holds ${count === 1 ? 'a record' : `${count} records`} from before records named their API host, so it cannot say where ${count === 1 ? 'its file' : 'their files'} went`,
    `if they were sent to ${host} (each to the org it names), pass --adopt-old-records once to record them so; otherwise give another --journal`,
  );
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Bytes written whole, or the error a full disk gives. */
function writeWhole(fd: number, bytes: Buffer) {
  if (writeSync(fd, bytes) < bytes.length)
    throw Object.assign(new Error('no space left on device (the write was cut short)'), { code: 'ENOSPC' });
}

/** Journal lines, each ended. */
const linesOf = (lines: string[]) => Buffer.from(lines.map((line) => `${line}\n`).join(''));

/** One line of a journal: its text (undefined when over the line limit) and the record it holds, if it is one. */
export interface JournalLine {
  line: number;
  /** The byte it starts at. */
  at: number;
  text: string | undefined;
  record: JournalRecord | undefined;
}

/** Reads a journal line by line, in bounded memory. */
export async function* journalLines(
  path: string,
  part?: { start: number; end: number; firstLine: number },
): AsyncGenerator<JournalLine> {
  const input = part ? createReadStream(path, { start: part.start, end: part.end - 1 }) : createReadStream(path);
  for await (const read of boundedLines(input, MAX_LINE_BYTES)) {
    const line = read.line + (part?.firstLine ?? 0);
    const at = read.at + (part?.start ?? 0);
    if (!('text' in read)) {
      yield { line, at, text: undefined, record: undefined };
      continue;
    }
    yield { line, at, text: read.text, record: parsedRecord(read.text) };
  }
}

/** The record a line holds, if it is one. */
function parsedRecord(text: string | undefined): JournalRecord | undefined {
  let value: unknown;
  try {
    value = text === undefined || text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    value = undefined;
  }
  return isJournalRecord(value) ? value : undefined;
}

/** The line of the file open as `fd` that starts at byte `at`, without its line end; undefined when over the line limit. */
function lineAt(fd: number, at: number): string | undefined {
  const parts: Buffer[] = [];
  for (let read = 0; read <= MAX_LINE_BYTES;) {
    const chunk = Buffer.allocUnsafe(4096);
    const got = readSync(fd, chunk, 0, chunk.length, at + read);
    const newline = chunk.subarray(0, got).indexOf(0x0a);
    parts.push(chunk.subarray(0, newline === -1 ? got : newline));
    if (newline !== -1 || got < chunk.length) return Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
    read += got;
  }
  return undefined;
}

/** Whether a parsed line is a record this journal can use. */
function isJournalRecord(value: unknown): value is JournalRecord {
  if (!isPlainObject(value)) return false;
  const { outcome, host, org, object, entity_id: entityId, name, media_type: mediaType, sha256, bytes } = value;
  return (
    (outcome === 'sending' || outcome === 'uploaded' || outcome === 'failed') &&
    (host === undefined || typeof host === 'string') &&
    typeof org === 'string' &&
    (object === undefined || linkedObject(object) !== undefined) &&
    typeof entityId === 'string' &&
    typeof name === 'string' &&
    (mediaType === null || typeof mediaType === 'string') &&
    (sha256 === null || typeof sha256 === 'string') &&
    typeof bytes === 'number'
  );
}
