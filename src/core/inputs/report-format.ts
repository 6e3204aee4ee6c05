import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { csvCellSafe, csvCellText } from '../shared/safe-text.js';
import { parseCsv } from '../shared/csv.js';

// The per-file report's format: its rows and columns, how a cell is written and read back, and
// reading a report. Below the stages, because a run writes reports (outcomes) and a report given
// back with --retry-failed is read as a manifest (inputs).

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
  'time',
  'org',
  'host',
  'entity_id',
  'path',
  'abs_path',
  'name',
  'media_type',
  'media_type_source',
  'custom_data',
  'bytes',
  'sha256',
  'outcome',
  'reason',
  'status',
  'error_code',
  'attempts',
  'possibly_duplicated',
  'object',
];

/** Columns a CSV report has when its run may change files (--convert, --fit, --strip-location); a JSON row has them when its file was changed. */
export const CHANGE_COLUMNS: ReadonlyArray<keyof ReportRow> = ['sent_bytes', 'sent_sha256', 'changes'];

/** Columns a CSV report has, last, when its run may read objects (an s3:// argument, or a manifest); a JSON row has them when its file is an object. */
export const OBJECT_COLUMNS: ReadonlyArray<keyof ReportRow> = ['etag', 'version_id'];

/** Columns every report has had, so a CSV naming them is recognisably a report. */
const REQUIRED_COLUMNS: ReadonlyArray<keyof ReportRow> = ['path', 'entity_id', 'outcome'];

/** Whether a report row is a file to send again: it failed, or the run stopped before sending it. */
export const isRetryable = (row: Pick<ReportRow, 'outcome' | 'reason'>): boolean =>
  row.outcome === 'failed' || (row.outcome === 'skipped' && /^not_sent(:|$)/.test(row.reason ?? ''));

/** Rows a run ends with exit 1 for although nothing failed: someone must decide (an unknown outcome, an invalid input skipped, a link not followed). */
export const isUndecided = (row: Pick<ReportRow, 'outcome' | 'reason'>): boolean =>
  row.outcome === 'skipped' && /^(unknown_outcome|invalid|link_outside)(:|$)/.test(row.reason ?? '');

// A cell a spreadsheet would run as a formula (the OWASP rule), and a leading quote, so that
// reading a report back can take off exactly the quote added.
const FORMULA_START = /^[=+\-@\t\r']/;

/**
 * A report cell: characters that act on a terminal escaped (so `cat report.csv` is safe, and
 * the text reads back exactly), then guarded against formulas, then quoted as RFC 4180 says.
 */
export const csvCell = (value: ReportRow[keyof ReportRow]): string => {
  let text = csvCellSafe(
    value === null || value === undefined
      ? ''
      : Array.isArray(value)
        ? value.join(';')
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value),
  );
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** A CSV cell as it was before csvCell guarded and escaped it. */
export const fromCsvCell = (cell: string) =>
  csvCellText(cell.length > 1 && cell[0] === "'" && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell);

/**
 * How the first line of a CSV report from before 2026-05 starts: a comment saying where its run
 * went, ahead of the column names. Still read (users keep such reports); no longer written, since
 * other CSV readers take it for the header: the run's header is in the meta file.
 */
export const CSV_REPORT_MARK = '# u21-media report';

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
  if (!header || REQUIRED_COLUMNS.some((c) => !header.includes(c)))
    throw new Error(`not a report: the CSV header must name ${REQUIRED_COLUMNS.join(', ')}`);
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
    ...(cell('changes') && {
      sent_bytes: num(cell('sent_bytes')),
      sent_sha256: cell('sent_sha256') || null,
      changes: cell('changes').split(';'),
    }),
    ...(cell('etag') && { etag: cell('etag'), version_id: cell('version_id') || null }),
  };
}

/** A JSON report row with the columns an older report lacks set to null. */
const completeRow = (row: Partial<ReportRow>): ReportRow => ({
  ...(Object.fromEntries(
    REPORT_COLUMNS.map((c) => [c, row[c] ?? (c === 'possibly_duplicated' ? false : null)]),
  ) as unknown as ReportRow),
  ...(row.changes && {
    sent_bytes: row.sent_bytes ?? null,
    sent_sha256: row.sent_sha256 ?? null,
    changes: row.changes,
  }),
  ...(row.etag && { etag: row.etag, version_id: row.version_id ?? null }),
});
