import { joinDistinct } from '../shared/join-distinct.js';
import { createWriteStream, type WriteStream } from 'node:fs';
import { safeJson } from '../shared/safe-text.js';
import { openToWrite } from '../shared/writable-file.js';
import { finished } from 'node:stream/promises';
import { extname } from 'node:path';
import { UsageError } from '../shared/errors.js';
import type { UploadEvent } from './events.js';
import { objectVersion, type PlannedFile } from '../inputs/plan.js';
import { CHANGE_COLUMNS, csvCell, OBJECT_COLUMNS, REPORT_COLUMNS, type ReportRow } from '../inputs/report-format.js';

/** The file a report row is about, when it got as far as being checked. */
type Described = Pick<
  PlannedFile,
  'absPath' | 'name' | 'mediaTypeSource' | 'customData' | 'original' | 'object' | 'stored'
>;

/** The report row for a file's final event; undefined for events that are not outcomes. */
function reportRow(
  event: UploadEvent,
  file: Described | undefined,
  where: { time: string; org: string; host: string },
): ReportRow | undefined {
  const described: Omit<
    ReportRow,
    | 'path'
    | 'entity_id'
    | 'media_type'
    | 'bytes'
    | 'sha256'
    | 'outcome'
    | 'reason'
    | 'status'
    | 'error_code'
    | 'attempts'
    | 'possibly_duplicated'
  > = {
    ...where,
    // A changed copy is gone after the run: a retry starts from the original.
    abs_path: file?.original?.absPath ?? file?.absPath ?? null,
    name: file?.name ?? null,
    media_type_source: file?.mediaTypeSource ?? null,
    custom_data: file?.customData ?? null,
    object: file?.object ?? null,
  };
  if ((event.event === 'uploaded' || event.event === 'failed') && event.changes)
    Object.assign(described, {
      sent_bytes: event.sent_bytes ?? null,
      sent_sha256: event.sent_sha256 ?? null,
      changes: event.changes,
    });
  // An object's version: the one its check saw and every read of it got.
  const version = file && objectVersion(file);
  if (version) Object.assign(described, version);
  switch (event.event) {
    case 'uploaded':
      return {
        ...described,
        path: event.path,
        entity_id: event.entity_id,
        media_type: event.media_type,
        bytes: event.bytes,
        sha256: event.sha256,
        outcome: 'uploaded',
        reason: null,
        status: 200,
        error_code: null,
        attempts: event.attempts,
        possibly_duplicated: event.possibly_duplicated ?? false,
      };
    case 'failed':
      return {
        ...described,
        path: event.path,
        entity_id: event.entity_id,
        media_type: event.media_type,
        bytes: event.bytes,
        sha256: event.sha256 ?? null,
        outcome: 'failed',
        reason: joinDistinct([event.error_code, event.message], ': '),
        status: event.status,
        error_code: event.error_code,
        attempts: event.attempts,
        possibly_duplicated: event.possibly_duplicated ?? false,
      };
    case 'skipped':
      return {
        ...described,
        path: event.path,
        entity_id: event.entity_id ?? null,
        media_type: event.media_type ?? null,
        bytes: event.bytes ?? null,
        sha256: event.sha256 ?? null,
        outcome: 'skipped',
        reason: `${event.reason}: ${event.message}`,
        status: null,
        error_code: null,
        attempts: null,
        possibly_duplicated: false,
      };
    default:
      return undefined;
  }
}

/** A row's file as --retry-failed finds it again (abs_path, else path, as an older report has only that) and where it went. */
const fileKey = (row: ReportRow) => JSON.stringify([row.abs_path ?? row.path, row.entity_id, row.object]);

/** Whether `row` happened before `than`: by their times, when both have one (reports from before times had none). */
const before = (row: ReportRow, than: ReportRow) =>
  row.time !== null && than.time !== null && Date.parse(row.time) < Date.parse(than.time);

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

/** The CSV report's meta file, beside it: `report.csv` → `report.csv.meta.json`. */
const metaPathOf = (reportPath: string) => `${reportPath}.meta.json`;

/** Which optional columns a CSV report has: its run may change files, may read objects. */
interface ReportSettings {
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
  static async open(
    path: string,
    header?: ReportHeader,
    onError: (error: NodeJS.ErrnoException) => void = () => {},
    now: () => number = Date.now,
    may: ReportSettings = {},
  ): Promise<ReportWriter> {
    const ext = extname(path).toLowerCase();
    if (ext !== '.json' && ext !== '.csv')
      throw new UsageError(`--report: "${path}" must end in .json or .csv`, 'the extension picks the format');
    const out = createWriteStream(path, { fd: await openToWrite(path, '--report') });
    const columns = [
      ...REPORT_COLUMNS,
      ...(may.change ? CHANGE_COLUMNS : []),
      ...(may.readObjects ? OBJECT_COLUMNS : []),
    ];
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
    const where = {
      time: new Date(this.now()).toISOString(),
      org: this.header?.org ?? null,
      host: this.header?.host ?? null,
    };
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
    if (!this.error && this.format === 'json')
      this.out.write(`${this.header ? `,\n${safeJson({ run_end: end })}` : ''}\n]\n`);
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

/** Writes rows as one report, `.json` or `.csv` by the path's extension. */
export async function writeReport(path: string, rows: readonly ReportRow[]): Promise<void> {
  const writer = await ReportWriter.open(path, undefined, undefined, undefined, {
    change: rows.some((row) => row.changes),
    readObjects: rows.some((row) => row.etag),
  });
  for (const row of rows) writer.addRow(row);
  await writer.close();
  if (writer.error) throw writer.error;
}
