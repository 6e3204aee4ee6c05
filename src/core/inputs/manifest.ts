import { createReadStream } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseCsv } from '../shared/csv.js';
import { boundedLines } from '../shared/lines.js';
import type { Found } from './found.js';
import { CSV_REPORT_MARK, fromCsvCell, isRetryable, reportRowFromCsv, type ReportRow } from './report-format.js';
import { isPlainObject, metadataFrom } from '../files/sidecar.js';
import type { MediaTypeSource } from './media-type.js';
import { linkedObject } from './route.js';
import type { LinkedObject } from './objects.js';
import { textProblem } from '../shared/well-formed.js';
import { isS3Url, parseS3Url } from '../s3/url.js';

const MEDIA_TYPE_SOURCES: readonly MediaTypeSource[] = ['manifest', 'sidecar', 'flag', 'file_name', 'none'];

/** A manifest row before checks: what the columns say. */
interface Row {
  line: number;
  path: unknown;
  entityId: unknown;
  /** Instead of entity_id: the unit21_id of an alert or a case. */
  alertId?: unknown;
  caseId?: unknown;
  /** A report's `object` column: what its entity_id names (absent or empty: an entity). */
  object?: unknown;
  mediaType: unknown;
  customData: unknown;
  /** From a report given back: where the file was (abs_path), whether --retry-failed takes it, and where its run sent it. */
  report?: {
    absPath: string | null;
    retryable: boolean;
    mediaTypeSource?: MediaTypeSource;
    sentTo: { host: string | null; org: string | null };
  };
}

type RowOrError = Row | { line: number; error: string };

/**
 * Reads a manifest (CSV with a header row, or JSONL) as files to upload, row by row; a report
 * written by --report (CSV or JSON) is read as one, its extra columns ignored. Paths are
 * relative to the manifest's folder (an s3:// URL names one object); a report's abs_path wins.
 * A bad row is a problem naming its line. With `retryFailed`, the file must be a report, and
 * only its failed and not_sent rows are taken.
 */
export async function* readManifest(
  manifestPath: string,
  cwd: string,
  options: { retryFailed?: boolean; destination?: Destination } = {},
): AsyncGenerator<Found> {
  const { retryFailed = false, destination } = options;
  const absManifest = resolve(cwd, manifestPath);
  const shownDir = dirname(manifestPath);
  const isJsonl = /\.(jsonl|ndjson)$/i.test(manifestPath);
  const isJson = /\.json$/i.test(manifestPath);
  const at = (line: number) => `${manifestPath}:${line}`;
  const noun = retryFailed ? 'report' : 'manifest';
  let rows = 0;
  try {
    if (retryFailed && isJsonl) throw new Error(NOT_A_REPORT);
    const source = isJsonl
      ? jsonlRows(absManifest)
      : isJson
        ? jsonReportRows(absManifest)
        : csvRows(absManifest, retryFailed);
    for await (const row of source) {
      // A report row with no entity is an input that never got one (invalid, unsupported): nothing to send.
      if (
        'report' in row &&
        row.report &&
        (row.entityId === '' || row.entityId === null || (retryFailed && !row.report.retryable))
      )
        continue;
      rows++;
      if ('error' in row) {
        yield { kind: 'problem', problem: { path: at(row.line), message: row.error } };
        continue;
      }
      const target =
        rowProblem(row) ?? (retryFailed && destination ? elsewhere(row, destination) : undefined) ?? targetOf(row);
      if (typeof target === 'string') {
        yield { kind: 'problem', problem: { path: at(row.line), message: target } };
        continue;
      }
      let metadata;
      try {
        metadata = metadataFrom({ media_type: row.mediaType || undefined, custom_data: row.customData }, 'row');
      } catch (error) {
        yield { kind: 'problem', problem: { path: at(row.line), message: (error as Error).message } };
        continue;
      }
      const path = row.path as string;
      // A report's path is as its run showed it; abs_path says where the file is from any folder, as an s3:// URL does.
      const reportedAt = row.report?.absPath;
      yield {
        kind: 'found',
        file: {
          path: reportedAt || isAbsolute(path) || isS3Url(path) ? path : join(shownDir, path),
          absPath: reportedAt ?? (isS3Url(path) ? path : resolve(dirname(absManifest), path)),
          explicit: true,
          key: path,
          row: {
            ...target,
            metadata,
            at: { path: manifestPath, line: row.line },
            ...(row.report?.mediaTypeSource && { mediaTypeSource: row.report.mediaTypeSource }),
          },
        },
      };
    }
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const message =
      err.code === 'ENOENT' ? `no such ${noun} file` : err.code ? `cannot read the ${noun} (${err.code})` : err.message;
    yield { kind: 'problem', problem: { path: manifestPath, message } };
    return;
  }
  // A report with nothing left to retry is a clean end, not a mistake.
  if (rows === 0 && !retryFailed)
    yield { kind: 'problem', problem: { path: manifestPath, message: 'the manifest lists no files' } };
}

/** Where this run sends, for a report given back to --retry-failed to be checked against; absent with --retry-elsewhere. */
export interface Destination {
  host: string;
  org: string;
}

/** Why a report's row may not be retried here: its run sent it to another API host or org. A report from before rows said where names none. */
function elsewhere(row: Row, destination: Destination): string | undefined {
  const { host, org } = row.report?.sentTo ?? { host: null, org: null };
  if ((host === null || host === destination.host) && (org === null || org === destination.org)) return undefined;
  return `the report's run sent it to ${host ?? destination.host} (org ${org ?? destination.org}), and this run sends to ${destination.host} (org ${destination.org}); give that run's --env or --base-url and --org, or pass --retry-elsewhere to send it here`;
}

/** Where a row's file goes: its entity, or an alert or a case; a string says why it cannot be told. */
function targetOf(row: Row): { entityId: string; object?: LinkedObject } | string {
  const given = (
    [
      ['entity_id', row.entityId, undefined],
      ['alert_id', row.alertId, 'alerts'],
      ['case_id', row.caseId, 'cases'],
    ] as const
  ).filter(([, id]) => id !== undefined && id !== null && id !== '');
  if (given.length === 0) return '"entity_id" is missing';
  if (given.length > 1)
    return `${given.map(([column]) => `"${column}"`).join(' and ')} are both given; a row names one entity, alert or case`;
  const [column, id, object] = given[0]!;
  if (typeof id !== 'string') return `"${column}" must be a string`;
  // A report's row says what its entity_id named.
  const linked = object ?? linkedObject(row.object);
  return { entityId: id, ...(linked && { object: linked }) };
}

/** What is wrong with a row's own columns; its target (targetOf, route) and metadata (metadataFrom) are checked on their own. */
function rowProblem(row: Row): string | undefined {
  if (typeof row.path !== 'string' || row.path.trim() === '') return '"path" is missing';
  const notText =
    textProblem(row.path, '"path"') ??
    (row.report?.absPath ? textProblem(row.report.absPath, '"abs_path"') : undefined);
  if (notText) return notText;
  if (isS3Url(row.path)) {
    const location = parseS3Url(row.path);
    if ('problem' in location) return `"path": ${location.problem}`;
    if (location.key === '' || location.key.endsWith('/'))
      return '"path" names a bucket or a prefix, not an object; a row names one object by its full key (s3://bucket/key)';
  }
  if (row.mediaType !== undefined && row.mediaType !== null && typeof row.mediaType !== 'string')
    return '"media_type" must be a string';
  if (row.customData !== undefined && !isPlainObject(row.customData)) return '"custom_data" must be a JSON object';
  return undefined;
}

const TARGET_COLUMNS = ['entity_id', 'alert_id', 'case_id'];
const COLUMNS = ['path', ...TARGET_COLUMNS, 'media_type', 'custom_data'];

/** A row names one file and its metadata; a longer one is refused rather than held (one 100 MB line took gigabytes). */
export const MAX_RECORD_BYTES = 1024 * 1024;
const TOO_LONG = 'the record is over 1 MB; a row names one file, its entity and its metadata';

const NOT_A_REPORT = 'not a report written by --report (a .csv or .json report, with an outcome per file)';

async function* csvRows(path: string, reportOnly: boolean): AsyncGenerator<RowOrError> {
  let header: string[] | undefined;
  let isReport = false;
  for await (const record of parseCsv(createReadStream(path, 'utf8'), MAX_RECORD_BYTES)) {
    if (record.tooLong) {
      if (!header)
        throw new Error(
          `line ${record.line}: the header is over 1 MB; it names the columns path, entity_id, media_type, custom_data`,
        );
      yield { line: record.line, error: TOO_LONG };
      continue;
    }
    if (!header && record.line === 1 && record.fields[0]?.startsWith(CSV_REPORT_MARK)) {
      isReport = true; // the report's own first line, saying where its run went
      continue;
    }
    if (!header) {
      header = record.fields.map((f) => f.trim().toLowerCase());
      // A report carries more columns than a manifest; a manifest with a typo'd column is still refused.
      isReport ||= header.includes('outcome');
      if (reportOnly && !isReport) throw new Error(NOT_A_REPORT);
      const unknown = isReport ? [] : header.filter((h) => !COLUMNS.includes(h));
      if (!header.includes('path') || !TARGET_COLUMNS.some((c) => header!.includes(c)) || unknown.length > 0) {
        throw new Error(
          `line ${record.line}: the header must name path and entity_id (or alert_id, case_id; and optionally media_type, custom_data)${unknown.length ? `; unknown column "${unknown[0]}"` : ''}`,
        );
      }
      continue;
    }
    if (record.fields.length !== header.length) {
      yield {
        line: record.line,
        error: `${record.fields.length} fields where the header has ${header.length}; quote fields that hold commas`,
      };
      continue;
    }
    if (isReport) {
      yield fromReportCsv(header, record.fields, record.line);
      continue;
    }
    const cell = (name: string) => {
      const index = header!.indexOf(name);
      return index === -1 ? undefined : record.fields[index];
    };
    let customData: unknown;
    const customText = cell('custom_data')?.trim();
    if (customText) {
      try {
        customData = JSON.parse(customText);
      } catch {
        yield { line: record.line, error: '"custom_data" is not valid JSON' };
        continue;
      }
    }
    // A blank media_type cell counts as absent.
    const mediaType = cell('media_type')?.trim() || undefined;
    yield {
      line: record.line,
      path: cell('path')?.trim(),
      entityId: cell('entity_id'),
      alertId: cell('alert_id'),
      caseId: cell('case_id'),
      mediaType,
      customData,
    };
  }
}

async function* jsonlRows(path: string): AsyncGenerator<Row | { line: number; error: string }> {
  for await (const read of boundedLines(createReadStream(path), MAX_RECORD_BYTES)) {
    const { line } = read;
    if ('tooLong' in read) {
      yield { line, error: TOO_LONG };
      continue;
    }
    const trimmed = (line === 1 ? read.text.replace(/^\uFEFF/, '') : read.text).trim();
    if (trimmed === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      yield { line, error: 'not valid JSON' };
      continue;
    }
    if (!isPlainObject(value)) {
      yield { line, error: 'each line must be a JSON object' };
      continue;
    }
    yield {
      line,
      path: value.path,
      entityId: value.entity_id,
      alertId: value.alert_id,
      caseId: value.case_id,
      mediaType: value.media_type,
      customData: value.custom_data,
    };
  }
}

/** A CSV report's record as a manifest row. */
function fromReportCsv(header: readonly string[], fields: readonly string[], line: number): RowOrError {
  let row;
  try {
    row = reportRowFromCsv(header, fields.map(fromCsvCell));
  } catch {
    return { line, error: '"custom_data" is not valid JSON' };
  }
  return reportedRow(row, line);
}

/** A report row (CSV or JSON) as a manifest row: its file, entity, media_type and custom_data. */
function reportedRow(row: Readonly<Record<string, unknown>> | ReportRow, line: number): Row {
  const absPath = typeof row.abs_path === 'string' && row.abs_path !== '' ? row.abs_path : null;
  const retryable = isRetryable({
    outcome: row.outcome as 'failed',
    reason: typeof row.reason === 'string' ? row.reason : null,
  });
  const source = MEDIA_TYPE_SOURCES.find((s) => s === row.media_type_source && s !== 'none');
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
  const sentTo = { host: text(row.host), org: text(row.org) };
  return {
    line,
    path: row.path,
    entityId: row.entity_id,
    object: row.object,
    mediaType: row.media_type || undefined,
    customData: row.custom_data ?? undefined,
    report: { absPath, retryable, sentTo, ...(source && { mediaTypeSource: source }) },
  };
}

/**
 * A JSON report as --report writes it: `[`, then one record a line, each but the last ending in
 * a comma, then `]`. Its first record is `{"run": …}` (or, merged, a row with an outcome); the
 * `run` and `run_end` records are not files.
 */
async function* jsonReportRows(path: string): AsyncGenerator<RowOrError> {
  let first = true;
  for await (const read of boundedLines(createReadStream(path), MAX_RECORD_BYTES)) {
    const { line } = read;
    if ('tooLong' in read) {
      yield { line, error: TOO_LONG };
      continue;
    }
    const text = (line === 1 ? read.text.replace(/^\uFEFF/, '') : read.text).trim().replace(/,$/, '');
    if (text === '' || text === ']') continue;
    if (line === 1 && text === '[') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      if (first) throw new Error(NOT_A_REPORT);
      yield { line, error: 'not valid JSON' };
      continue;
    }
    if (first && !(isPlainObject(value) && ('run' in value || 'outcome' in value))) throw new Error(NOT_A_REPORT);
    first = false;
    if (!isPlainObject(value)) {
      yield { line, error: 'each record must be a JSON object' };
      continue;
    }
    if ('run' in value || 'run_end' in value) continue;
    yield reportedRow(value, line);
  }
}
