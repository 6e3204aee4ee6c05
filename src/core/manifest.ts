import { createReadStream } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseCsv } from './csv.js';
import { boundedLines } from './lines.js';
import type { Found } from './discover.js';
import { isPlainObject, metadataFrom } from './sidecar.js';

/** A manifest row before checks: what the columns say. */
interface Row {
  line: number;
  path: unknown;
  entityId: unknown;
  mediaType: unknown;
  customData: unknown;
}

/**
 * Reads a manifest (CSV with a header row, or JSONL) as files to upload, row by row.
 * Paths are relative to the manifest's folder. A bad row is a problem naming its line.
 */
export async function* readManifest(manifestPath: string, cwd: string): AsyncGenerator<Found> {
  const absManifest = resolve(cwd, manifestPath);
  const shownDir = dirname(manifestPath);
  const isJsonl = /\.(jsonl|ndjson)$/i.test(manifestPath);
  const at = (line: number) => `${manifestPath}:${line}`;
  let rows = 0;
  try {
    for await (const row of isJsonl ? jsonlRows(absManifest) : csvRows(absManifest)) {
      rows++;
      if ('error' in row) {
        yield { kind: 'problem', problem: { path: at(row.line), message: row.error } };
        continue;
      }
      const problem = rowProblem(row);
      if (problem) {
        yield { kind: 'problem', problem: { path: at(row.line), message: problem } };
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
      yield {
        kind: 'found',
        file: {
          path: isAbsolute(path) ? path : join(shownDir, path),
          absPath: resolve(dirname(absManifest), path),
          explicit: true,
          key: path,
          row: { entityId: row.entityId as string, metadata, where: at(row.line) },
        },
      };
    }
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const message = err.code === 'ENOENT' ? 'no such manifest file' : err.code ? `cannot read the manifest (${err.code})` : err.message;
    yield { kind: 'problem', problem: { path: manifestPath, message } };
    return;
  }
  if (rows === 0) yield { kind: 'problem', problem: { path: manifestPath, message: 'the manifest lists no files' } };
}

function rowProblem(row: Row): string | undefined {
  if (typeof row.path !== 'string' || row.path.trim() === '') return '"path" is missing';
  if (typeof row.entityId !== 'string' || row.entityId === '') return '"entity_id" is missing';
  if (row.mediaType !== undefined && row.mediaType !== null && typeof row.mediaType !== 'string') return '"media_type" must be a string';
  if (row.customData !== undefined && !isPlainObject(row.customData)) return '"custom_data" must be a JSON object';
  return undefined;
}

const COLUMNS = ['path', 'entity_id', 'media_type', 'custom_data'];

/** A row names one file and its metadata; a longer one is refused rather than held (one 100 MB line took gigabytes). */
export const MAX_RECORD_BYTES = 1024 * 1024;
const TOO_LONG = 'the record is over 1 MB; a row names one file, its entity and its metadata';

async function* csvRows(path: string): AsyncGenerator<Row | { line: number; error: string }> {
  let header: string[] | undefined;
  for await (const record of parseCsv(createReadStream(path, 'utf8'), MAX_RECORD_BYTES)) {
    if (record.tooLong) {
      if (!header) throw new Error(`line ${record.line}: the header is over 1 MB; it names the columns path, entity_id, media_type, custom_data`);
      yield { line: record.line, error: TOO_LONG };
      continue;
    }
    if (!header) {
      header = record.fields.map((f) => f.trim().toLowerCase());
      const unknown = header.filter((h) => !COLUMNS.includes(h));
      if (!header.includes('path') || !header.includes('entity_id') || unknown.length > 0) {
        throw new Error(`line ${record.line}: the header must name path and entity_id (and optionally media_type, custom_data)${unknown.length ? `; unknown column "${unknown[0]}"` : ''}`);
      }
      continue;
    }
    if (record.fields.length !== header.length) {
      yield { line: record.line, error: `${record.fields.length} fields where the header has ${header.length}; quote fields that hold commas` };
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
    yield { line: record.line, path: cell('path')?.trim(), entityId: cell('entity_id'), mediaType, customData };
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
    yield { line, path: value.path, entityId: value.entity_id, mediaType: value.media_type, customData: value.custom_data };
  }
}
