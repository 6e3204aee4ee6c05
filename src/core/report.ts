import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseCsv } from './csv.js';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { extname } from 'node:path';
import { UsageError } from './errors.js';
import type { UploadEvent } from './events.js';

/** One row per file, for audit. */
export interface ReportRow {
  path: string;
  entity_id: string | null;
  media_type: string | null;
  bytes: number | null;
  sha256: string | null;
  outcome: 'uploaded' | 'failed' | 'skipped';
  reason: string | null;
  status: number | null;
  attempts: number | null;
  possibly_duplicated: boolean;
}

const REPORT_COLUMNS: ReadonlyArray<keyof ReportRow> = [
  'path', 'entity_id', 'media_type', 'bytes', 'sha256', 'outcome', 'reason', 'status', 'attempts', 'possibly_duplicated',
];

/** The report row for a file's final event; undefined for events that are not outcomes. */
function reportRow(event: UploadEvent): ReportRow | undefined {
  switch (event.event) {
    case 'uploaded':
      return { path: event.path, entity_id: event.entity_id, media_type: event.media_type, bytes: event.bytes, sha256: event.sha256, outcome: 'uploaded', reason: null, status: 200, attempts: event.attempts, possibly_duplicated: event.possibly_duplicated ?? false };
    case 'failed':
      return { path: event.path, entity_id: event.entity_id, media_type: event.media_type, bytes: event.bytes, sha256: null, outcome: 'failed', reason: [event.error_code, event.message].filter(Boolean).join(': '), status: event.status, attempts: event.attempts, possibly_duplicated: event.possibly_duplicated ?? false };
    case 'skipped':
      return { path: event.path, entity_id: event.entity_id ?? null, media_type: event.media_type ?? null, bytes: event.bytes ?? null, sha256: event.sha256 ?? null, outcome: 'skipped', reason: `${event.reason}: ${event.message}`, status: null, attempts: null, possibly_duplicated: false };
    default:
      return undefined;
  }
}

/** Where a run sent its files, said first in its report. */
export interface ReportHeader {
  run_id: string;
  host: string;
  org: string;
  /** The proxy the run went through, credentials masked, or null. */
  proxy: string | null;
  /** The config file the run used, or null. */
  config: string | null;
  started: string;
}

// A cell a spreadsheet would run as a formula (the OWASP rule), and a leading quote, so that
// reading a report back can take off exactly the quote added.
const FORMULA_START = /^[=+\-@\t\r']/;

const csvCell = (value: ReportRow[keyof ReportRow]): string => {
  let text = value === null || value === undefined ? '' : String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** A CSV cell as it was before csvCell guarded it. */
const fromCsvCell = (text: string) => (text.length > 1 && text[0] === "'" && FORMULA_START.test(text.slice(1)) ? text.slice(1) : text);

/** The CSV report's first line: where the run went, as a comment a reader of the report sees first. */
const csvHeaderLine = (h: ReportHeader) => `# u21-media report · run ${h.run_id} · host ${h.host} · org ${h.org} · config ${h.config ?? 'none'} · started ${h.started}`;

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
    private readonly format: 'json' | 'csv',
  ) {}

  static async open(path: string, header?: ReportHeader, onError: (error: NodeJS.ErrnoException) => void = () => {}): Promise<ReportWriter> {
    const ext = extname(path).toLowerCase();
    if (ext !== '.json' && ext !== '.csv') throw new UsageError(`--report: "${path}" must end in .json or .csv`, 'the extension picks the format');
    const out = createWriteStream(path);
    await once(out, 'open');
    const writer = new ReportWriter(out, ext === '.json' ? 'json' : 'csv');
    out.on('error', (error: NodeJS.ErrnoException) => {
      if (writer.error) return;
      writer.error = Object.assign(error, { path });
      onError(writer.error);
    });
    if (writer.format === 'json') out.write(header ? `[\n${JSON.stringify({ run: header })}` : '[');
    else out.write(`${header ? `${csvHeaderLine(header)}\n` : ''}${REPORT_COLUMNS.join(',')}\n`);
    if (header) writer.rows++;
    return writer;
  }

  add(event: UploadEvent): void {
    const row = reportRow(event);
    if (row) this.addRow(row);
  }

  addRow(row: ReportRow): void {
    if (this.error) return;
    if (this.format === 'json') this.out.write(`${this.rows === 0 ? '\n' : ',\n'}${JSON.stringify(row)}`);
    else this.out.write(`${REPORT_COLUMNS.map((c) => csvCell(row[c])).join(',')}\n`);
    this.rows++;
  }

  /** Ends the report; a write error on the way is told to onError, not thrown. */
  async close(): Promise<void> {
    if (!this.error && this.format === 'json') this.out.write('\n]\n');
    this.out.end();
    await finished(this.out).catch(() => {});
  }
}

/** Reads a report written by ReportWriter (`.json` or `.csv`) back into rows. */
export async function readReport(path: string): Promise<ReportRow[]> {
  const text = await readFile(path, 'utf8');
  if (extname(path).toLowerCase() === '.json') {
    const rows = JSON.parse(text) as unknown;
    if (!Array.isArray(rows)) throw new Error('not a report: expected a JSON array of rows');
    return (rows as Array<ReportRow | { run: unknown }>).filter((row): row is ReportRow => !('run' in row));
  }
  const records: string[][] = [];
  // The first line may be the comment that says where the run went.
  const body = text.startsWith('# ') ? text.slice(text.indexOf('\n') + 1) : text;
  for await (const record of parseCsv([body])) records.push(record.fields.map(fromCsvCell));
  const [header, ...rest] = records;
  if (!header || REPORT_COLUMNS.some((c) => !header.includes(c))) throw new Error(`not a report: the CSV header must name ${REPORT_COLUMNS.join(', ')}`);
  const cell = (fields: string[], column: keyof ReportRow) => fields[header.indexOf(column)] ?? '';
  const num = (text: string) => (text === '' ? null : Number(text));
  return rest.map((f) => ({
    path: cell(f, 'path'),
    entity_id: cell(f, 'entity_id') || null,
    media_type: cell(f, 'media_type') || null,
    bytes: num(cell(f, 'bytes')),
    sha256: cell(f, 'sha256') || null,
    outcome: cell(f, 'outcome') as ReportRow['outcome'],
    reason: cell(f, 'reason') || null,
    status: num(cell(f, 'status')),
    attempts: num(cell(f, 'attempts')),
    possibly_duplicated: cell(f, 'possibly_duplicated') === 'true',
  }));
}

/** Writes rows as one report, `.json` or `.csv` by the path's extension. */
export async function writeReport(path: string, rows: readonly ReportRow[]): Promise<void> {
  const writer = await ReportWriter.open(path);
  for (const row of rows) writer.addRow(row);
  await writer.close();
  if (writer.error) throw writer.error;
}
