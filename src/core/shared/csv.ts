/** One CSV record and the line it starts on (1-based, counting the header). */
export interface CsvRecord {
  line: number;
  /** Empty for a record too long to read. */
  fields: string[];
  /** Over the parser's maxRecordBytes: skipped as it streamed by, never held. */
  tooLong?: true;
}

/**
 * Streams RFC 4180 records: quoted fields with commas, doubled quotes and line breaks inside,
 * CRLF or LF line ends, a leading UTF-8 BOM. Throws with the line number on a stray quote.
 */
export async function* parseCsv(
  chunks: AsyncIterable<string> | Iterable<string>,
  maxRecordBytes = Infinity,
): AsyncGenerator<CsvRecord> {
  let field = '';
  let recordBytes = 0;
  let tooLong = false;
  let fields: string[] = [];
  let inQuotes = false;
  let quoteClosed = false; // just left a quoted section: only a separator or line end may follow
  let line = 1;
  let recordLine = 1;
  let first = true;
  let pendingCR = false;

  const endRecord = function* (): Generator<CsvRecord> {
    fields.push(field);
    if (tooLong) yield { line: recordLine, fields: [], tooLong: true };
    // A blank line is no record.
    else if (!(fields.length === 1 && fields[0] === '')) yield { line: recordLine, fields };
    fields = [];
    field = '';
    quoteClosed = false;
    recordBytes = 0;
    tooLong = false;
  };
  // Text for the current field, unless the record is already too long to keep.
  const keep = (ch: string) => {
    if (tooLong) return;
    recordBytes += ch.length === 1 && ch.charCodeAt(0) < 0x80 ? 1 : Buffer.byteLength(ch);
    if (recordBytes > maxRecordBytes) {
      tooLong = true;
      field = '';
      fields = [];
    } else field += ch;
  };

  for await (let chunk of chunks) {
    if (first) {
      chunk = chunk.replace(/^\uFEFF/, '');
      first = false;
    }
    for (const ch of chunk) {
      if (pendingCR) {
        pendingCR = false;
        if (ch === '\n') continue; // CRLF: the CR already ended the record
      }
      if (inQuotes) {
        if (ch === '"') {
          inQuotes = false;
          quoteClosed = true;
        } else {
          if (ch === '\n') line++;
          keep(ch);
        }
        continue;
      }
      if (ch === '"') {
        if (quoteClosed) {
          keep('"'); // a doubled quote inside a quoted field
          inQuotes = true;
          quoteClosed = false;
        } else if (field === '') {
          inQuotes = true;
        } else {
          throw new Error(
            `line ${line}: a quote inside an unquoted field; quote the whole field and double inner quotes`,
          );
        }
        continue;
      }
      if (ch === ',') {
        if (!tooLong) fields.push(field);
        keep(ch); // counted, not kept: a record of a million empty fields is long too
        field = '';
        quoteClosed = false;
      } else if (ch === '\n' || ch === '\r') {
        yield* endRecord();
        pendingCR = ch === '\r';
        line++;
        recordLine = line;
      } else {
        if (quoteClosed) throw new Error(`line ${line}: text after a closing quote; quote the whole field`);
        keep(ch);
      }
    }
  }
  if (inQuotes) throw new Error(`line ${recordLine}: a quoted field is never closed`);
  if (field !== '' || fields.length > 0) yield* endRecord();
}
