import { joinDistinct } from '../shared/join-distinct.js';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { csvCellSafe, csvCellText, safeJson } from '../shared/safe-text.js';
import { openToWrite } from '../shared/writable-file.js';
import { parseCsv } from '../shared/csv.js';
import { finished } from 'node:stream/promises';
import { extname } from 'node:path';
import { UsageError } from '../shared/errors.js';
import type { UploadEvent } from './events.js';
import type { PlannedFile } from '../inputs/plan.js';

/** One row per file, for audit: what was sent where, and how it ended. */
export interface ReportRow {
  /** When the file's outcome was known (ISO 8601). */
  time: string | null;
  org: string | null;
  /** The API root the run sent to. */
  host: string | null;
  entity_id: string | null;
  /** As shown in the run: relative to the folder it ran in. */
  path: string;
  /** The file's absolute path, so `--retry-failed` finds it from any folder. */
  abs_path: string | null;
  /** The media `name` sent (the file's base name). */
  name: string | null;
  media_type: string | null;
  /** Where media_type came from: manifest, sidecar, flag, file_name or none. */
  media_type_source: string | null;
  /** What the sidecar or manifest row gave, so a retry sends the same. */
  custom_data: Record<string, unknown> | null;
  bytes: number | null;
  sha256: string | null;
  outcome: 'uploaded' | 'failed' | 'skipped';
  reason: string | null;
  status: number | null;
  error_code: string | null;
  attempts: number | null;
  possibly_duplicated: boolean;
  /** What entity_id names when it is not an entity: events, alerts or cases; null for an entity. */
  object: string | null;
  /** For a file sent changed (--convert, --fit, --strip-location): `bytes` and `sha256` are the original's, these the copy's sent as `name`. */
  sent_bytes?: number | null;
  sent_sha256?: string | null;
  /** What was done: converted, fitted, location_stripped (`;`-separated in CSV). */
  changes?: string[] | null;
  /** For an object in a bucket (an s3:// path): the ETag of the version checked and sent (without S3's quotes). */
  etag?: string | null;
  /** Its version, in a versioned bucket (as S3 answered its HEAD or GET); null otherwise. */
  version_id?: string | null;
}

/** The columns in order; a report from before some of them existed reads them as empty. */
export const REPORT_COLUMNS: ReadonlyArray<keyof ReportRow> = [
  'time', 'org', 'host', 'entity_id', 'path', 'abs_path', 'name', 'media_type', 'media_type_source', 'custom_data',
  'bytes', 'sha256', 'outcome', 'reason', 'status', 'error_code', 'attempts', 'possibly_duplicated', 'object',
];

/** Columns a CSV report has when its run may change files (--convert, --fit, --strip-location); a JSON row has them when its file was changed. */
export const CHANGE_COLUMNS: ReadonlyArray<keyof ReportRow> = ['sent_bytes', 'sent_sha256', 'changes'];

/** Columns a CSV report has, last, when its run may read objects (an s3:// argument, or a manifest); a JSON row has them when its file is an object. */
export const OBJECT_COLUMNS: ReadonlyArray<keyof ReportRow> = ['etag', 'version_id'];

/** Columns every report has had, so a CSV naming them is recognisably a report. */
const REQUIRED_COLUMNS: ReadonlyArray<keyof ReportRow> = ['path', 'entity_id', 'outcome'];

/** The file a report row is about, when it got as far as being checked. */
type Described = Pick<PlannedFile, 'absPath' | 'name' | 'mediaTypeSource' | 'customData' | 'original' | 'object' | 'stored'>;

/** The report row for a file's final event; undefined for events that are not outcomes. */
function reportRow(event: UploadEvent, file: Described | undefined, where: { time: string; org: string; host: string }): ReportRow | undefined {
  const described: Omit<ReportRow, 'path' | 'entity_id' | 'media_type' | 'bytes' | 'sha256' | 'outcome' | 'reason' | 'status' | 'error_code' | 'attempts' | 'possibly_duplicated'> = {
    ...where,
    // A changed copy is gone after the run: a retry starts from the original.
    abs_path: file?.original?.absPath ?? file?.absPath ?? null,
    name: file?.name ?? null,
    media_type_source: file?.mediaTypeSource ?? null,
    custom_data: file?.customData ?? null,
    object: file?.object ?? null,
  };
  if ((event.event === 'uploaded' || event.event === 'failed') && event.changes) Object.assign(described, { sent_bytes: event.sent_bytes ?? null, sent_sha256: event.sent_sha256 ?? null, changes: event.changes });
  // An object's version: the one its check saw and every read of it got (a changed copy's original's).
  const stored = file?.original?.stored ?? file?.stored;
  if (stored) Object.assign(described, { etag: stored.etag.replace(/^"|"$/g, '') || null, version_id: stored.versionId ?? null });
  switch (event.event) {
    case 'uploaded':
      return { ...described, path: event.path, entity_id: event.entity_id, media_type: event.media_type, bytes: event.bytes, sha256: event.sha256, outcome: 'uploaded', reason: null, status: 200, error_code: null, attempts: event.attempts, possibly_duplicated: event.possibly_duplicated ?? false };
    case 'failed':
      return { ...described, path: event.path, entity_id: event.entity_id, media_type: event.media_type, bytes: event.bytes, sha256: event.sha256 ?? null, outcome: 'failed', reason: joinDistinct([event.error_code, event.message], ': '), status: event.status, error_code: event.error_code, attempts: event.attempts, possibly_duplicated: event.possibly_duplicated ?? false };
    case 'skipped':
      return { ...described, path: event.path, entity_id: event.entity_id ?? null, media_type: event.media_type ?? null, bytes: event.bytes ?? null, sha256: event.sha256 ?? null, outcome: 'skipped', reason: `${event.reason}: ${event.message}`, status: null, error_code: null, attempts: null, possibly_duplicated: false };
    default:
      return undefined;
  }
}

/** Whether a report row is a file to send again: it failed, or the run stopped before sending it. */
export const isRetryable = (row: Pick<ReportRow, 'outcome' | 'reason'>): boolean =>
  row.outcome === 'failed' || (row.outcome === 'skipped' && /^not_sent(:|$)/.test(row.reason ?? ''));

/** A row's file as --retry-failed finds it again (abs_path, else path, as an older report has only that) and where it went. */
const fileKey = (row: ReportRow) => JSON.stringify([row.abs_path ?? row.path, row.entity_id, row.object]);

/** Rows a run ends with exit 1 for although nothing failed: someone must decide (an unknown outcome, an invalid input skipped, a link not followed). */
export const isUndecided = (row: Pick<ReportRow, 'outcome' | 'reason'>): boolean => row.outcome === 'skipped' && /^(unknown_outcome|invalid|link_outside)(:|$)/.test(row.reason ?? '');

/** Whether `row` happened before `than`: by their times, when both have one (reports from before times had none). */
const before = (row: ReportRow, than: ReportRow) => row.time !== null && than.time !== null && Date.parse(row.time) < Date.parse(than.time);

/**
 * Each file's last outcome across reports (a run's, then its retries'), in the order given:
 * the later row wins; by time when both rows have one, else by order. A skip sent nothing, so
 * it never replaces an upload (a retry that finds the file in the journal, a duplicate row),.
 * Rows keep the place of the file's first row. `replaced` counts the rows left out.
 */
export function lastOutcomes(reports: ReadonlyArray<readonly ReportRow[]>): { rows: ReportRow[]; replaced: number } {
  const last = new Map<string, ReportRow>();
  let replaced = 0;
  for (const row of reports.flat()) {
    const key = fileKey(row);
    const earlier = last.get(key);
    if (earlier) replaced++;
    if (earlier && (before(row, earlier) || (row.outcome === 'skipped' && earlier.outcome === 'uploaded'))) continue;
    last.set(key, row);
  }
  return { rows: [...last.values()], replaced };
}

/** Where a run sent its files and what ran: the JSON report's first record, the CSV report's meta file. */
export interface ReportHeader {
  tool: 'u21-media';
  tool_version: string;
  run_id: string;
  host: string;
  org: string;
  /** The proxy the run went through, credentials masked, or null. */
  proxy: string | null;
  /** The config file the run used, or null. */
  config: string | null;
  /** The command line as typed, proxy credentials masked (the key is never on it), or null from the library. */
  command: string | null;
  started: string;
}

/** How the run ended, said last in its report: the JSON report's last record, the CSV report's meta file. */
export interface ReportEnd {
  ended: string;
  /** The run's summary counts; null when the run ended on an error before counting. */
  totals: Record<string, unknown> | null;
}

// A cell a spreadsheet would run as a formula (the OWASP rule), and a leading quote, so that
// reading a report back can take off exactly the quote added.
const FORMULA_START = /^[=+\-@\t\r']/;

/**
 * A report cell: characters that act on a terminal escaped (so `cat report.csv` is safe, and
 * the text reads back exactly), then guarded against formulas, then quoted as RFC 4180 says.
 */
const csvCell = (value: ReportRow[keyof ReportRow]): string => {
  let text = csvCellSafe(value === null || value === undefined ? '' : Array.isArray(value) ? value.join(';') : typeof value === 'object' ? JSON.stringify(value) : String(value));
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** A CSV cell as it was before csvCell guarded and escaped it. */
export const fromCsvCell = (cell: string) => csvCellText(cell.length > 1 && cell[0] === "'" && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell);

/**
 * How the first line of a CSV report from before 2026-05 starts: a comment saying where its run
 * went, ahead of the column names. Still read (users keep such reports); no longer written, since
 * other CSV readers take it for the header: the run's header is in the meta file.
 */
export const CSV_REPORT_MARK = '# u21-media report';

/** The CSV report's meta file, beside it: `report.csv` → `report.csv.meta.json`. */
export const metaPathOf = (reportPath: string) => `${reportPath}.meta.json`;

/** Which optional columns a CSV report has: its run may change files, may read objects. */
export interface ReportSettings {
  change?: boolean;
  readObjects?: boolean;
}

/**
 * Writes the per-file report as outcomes come (`.json` array or `.csv`), so memory stays flat.
 * A write that fails (a full disk) is told to `onError` once; the writer then writes nothing more.
 */
export class ReportWriter {
  private rows = 0;
  /** The first write error, once one came. */
  error: NodeJS.ErrnoException | undefined;

  private constructor(
    private readonly out: WriteStream,
    private readonly path: string,
    private readonly format: 'json' | 'csv',
    private readonly header: ReportHeader | undefined,
    private readonly now: () => number,
    private readonly onError: (error: NodeJS.ErrnoException) => void,
    private readonly columns: ReadonlyArray<keyof ReportRow>,
  ) {}

  /** `may` says which optional columns a CSV report has: its run may change files, may read objects. */
  static async open(path: string, header?: ReportHeader, onError: (error: NodeJS.ErrnoException) => void = () => {}, now: () => number = Date.now, may: ReportSettings = {}): Promise<ReportWriter> {
    const ext = extname(path).toLowerCase();
    if (ext !== '.json' && ext !== '.csv') throw new UsageError(`--report: "${path}" must end in .json or .csv`, 'the extension picks the format');
    const out = createWriteStream(path, { fd: await openToWrite(path, '--report') });
    const columns = [...REPORT_COLUMNS, ...(may.change ? CHANGE_COLUMNS : []), ...(may.readObjects ? OBJECT_COLUMNS : [])];
    const writer = new ReportWriter(out, path, ext === '.json' ? 'json' : 'csv', header, now, onError, columns);
    out.on('error', (error: NodeJS.ErrnoException) => writer.failed(Object.assign(error, { path })));
    if (writer.format === 'json') out.write(header ? `[\n${safeJson({ run: header })}` : '[');
    // Plain RFC 4180: the column names first, then a record a file; the run's header goes to the meta file.
    else out.write(`${columns.join(',')}\n`);
    if (header) writer.rows++;
    // Written at once too: a run killed before its end still leaves what it was.
    if (header && writer.format === 'csv') await writer.writeMeta({ ...header, ended: null, totals: null });
    return writer;
  }

  /** A file's outcome event as a row; `file` is what the run knew of it beyond the event. */
  add(event: UploadEvent, file?: Described): void {
    const where = { time: new Date(this.now()).toISOString(), org: this.header?.org ?? null, host: this.header?.host ?? null };
    const row = reportRow(event, file, where as { time: string; org: string; host: string });
    if (row) this.addRow(row);
  }

  addRow(row: ReportRow): void {
    if (this.error) return;
    if (this.format === 'json') this.out.write(`${this.rows === 0 ? '\n' : ',\n'}${safeJson(row)}`);
    else this.out.write(`${this.columns.map((c) => csvCell(row[c] ?? null)).join(',')}\n`);
    this.rows++;
  }

  /** Ends the report, with how the run ended when it has a header; a write error on the way is told to onError, not thrown. */
  async close(totals?: Record<string, unknown>): Promise<void> {
    const end: ReportEnd = { ended: new Date(this.now()).toISOString(), totals: totals ?? null };
    if (!this.error && this.format === 'json') this.out.write(`${this.header ? `,\n${safeJson({ run_end: end })}` : ''}\n]\n`);
    this.out.end();
    await finished(this.out).catch(() => {});
    if (this.header && this.format === 'csv' && !this.error) await this.writeMeta({ ...this.header, ...end });
  }

  private async writeMeta(meta: object): Promise<void> {
    const path = metaPathOf(this.path);
    try {
      const file = await openToWrite(path, '--report');
      await file.writeFile(`${safeJson(meta, 2)}\n`).finally(() => file.close());
    } catch (error) {
      this.failed(Object.assign(error as NodeJS.ErrnoException, { path }));
    }
  }

  private failed(error: NodeJS.ErrnoException): void {
    if (this.error) return;
    this.error = error;
    this.onError(error);
  }
}

/** Reads a report written by ReportWriter (`.json` or `.csv`, of any version) back into rows. */
export async function readReport(path: string): Promise<ReportRow[]> {
  const text = await readFile(path, 'utf8');
  if (extname(path).toLowerCase() === '.json') {
    const rows = JSON.parse(text) as unknown;
    if (!Array.isArray(rows)) throw new Error('not a report: expected a JSON array of rows');
    return (rows as Array<Partial<ReportRow> | { run: unknown } | { run_end: unknown }>)
      .filter((row): row is Partial<ReportRow> => !('run' in row) && !('run_end' in row))
      .map(completeRow);
  }
  const records: string[][] = [];
  // An older report's first line is the comment that says where its run went.
  const body = text.startsWith(CSV_REPORT_MARK) ? text.slice(text.indexOf('\n') + 1) : text;
  for await (const record of parseCsv([body])) records.push(record.fields.map(fromCsvCell));
  const [header, ...rest] = records;
  if (!header || REQUIRED_COLUMNS.some((c) => !header.includes(c))) throw new Error(`not a report: the CSV header must name ${REQUIRED_COLUMNS.join(', ')}`);
  return rest.map((fields) => reportRowFromCsv(header, fields));
}

/** One CSV report record as a row; columns an older report lacks read as empty. */
export function reportRowFromCsv(header: readonly string[], fields: readonly string[]): ReportRow {
  const cell = (column: keyof ReportRow) => {
    const index = header.indexOf(column);
    return index === -1 ? '' : (fields[index] ?? '');
  };
  const num = (text: string) => (text === '' ? null : Number(text));
  const customData = cell('custom_data');
  return {
    time: cell('time') || null,
    org: cell('org') || null,
    host: cell('host') || null,
    entity_id: cell('entity_id') || null,
    path: cell('path'),
    abs_path: cell('abs_path') || null,
    name: cell('name') || null,
    media_type: cell('media_type') || null,
    media_type_source: cell('media_type_source') || null,
    custom_data: customData ? (JSON.parse(customData) as Record<string, unknown>) : null,
    bytes: num(cell('bytes')),
    sha256: cell('sha256') || null,
    outcome: cell('outcome') as ReportRow['outcome'],
    reason: cell('reason') || null,
    status: num(cell('status')),
    error_code: cell('error_code') || null,
    attempts: num(cell('attempts')),
    possibly_duplicated: cell('possibly_duplicated') === 'true',
    object: cell('object') || null,
    ...(cell('changes') && { sent_bytes: num(cell('sent_bytes')), sent_sha256: cell('sent_sha256') || null, changes: cell('changes').split(';') }),
    ...(cell('etag') && { etag: cell('etag'), version_id: cell('version_id') || null }),
  };
}

/** A JSON report row with the columns an older report lacks set to null. */
const completeRow = (row: Partial<ReportRow>): ReportRow => ({
  ...(Object.fromEntries(REPORT_COLUMNS.map((c) => [c, row[c] ?? (c === 'possibly_duplicated' ? false : null)])) as unknown as ReportRow),
  ...(row.changes && { sent_bytes: row.sent_bytes ?? null, sent_sha256: row.sent_sha256 ?? null, changes: row.changes }),
  ...(row.etag && { etag: row.etag, version_id: row.version_id ?? null }),
});

/** Writes rows as one report, `.json` or `.csv` by the path's extension. */
export async function writeReport(path: string, rows: readonly ReportRow[]): Promise<void> {
  const writer = await ReportWriter.open(path, undefined, undefined, undefined, { change: rows.some((row) => row.changes), readObjects: rows.some((row) => row.etag) });
  for (const row of rows) writer.addRow(row);
  await writer.close();
  if (writer.error) throw writer.error;
}
