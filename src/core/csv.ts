/** One CSV record and the line it starts on (1-based, counting the header). */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/**
 * Streams RFC 4180 records: quoted fields with commas, doubled quotes and line breaks inside,
 * CRLF or LF line ends, a leading UTF-8 BOM. Throws with the line number on a stray quote.
 */
export async function* parseCsv(chunks: AsyncIterable<string> | Iterable<string>): AsyncGenerator<CsvRecord> {
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  let quoteClosed = false; // just left a quoted section: only a separator or line end may follow
  let line = 1;
  let recordLine = 1;
  let first = true;
  let pendingCR = false;

  const endRecord = function* (): Generator<CsvRecord> {
    fields.push(field);
    // A blank line is no record.
    if (!(fields.length === 1 && fields[0] === '')) yield { line: recordLine, fields };
    fields = [];
    field = '';
    quoteClosed = false;
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
          field += ch;
        }
        continue;
      }
      if (ch === '"') {
        if (quoteClosed) {
          field += '"'; // a doubled quote inside a quoted field
          inQuotes = true;
          quoteClosed = false;
        } else if (field === '') {
          inQuotes = true;
        } else {
          throw new Error(`line ${line}: a quote inside an unquoted field; quote the whole field and double inner quotes`);
        }
        continue;
      }
      if (ch === ',') {
        fields.push(field);
        field = '';
        quoteClosed = false;
      } else if (ch === '\n' || ch === '\r') {
        yield* endRecord();
        pendingCR = ch === '\r';
        line++;
        recordLine = line;
      } else {
        if (quoteClosed) throw new Error(`line ${line}: text after a closing quote; quote the whole field`);
        field += ch;
      }
    }
  }
  if (inQuotes) throw new Error(`line ${recordLine}: a quoted field is never closed`);
  if (field !== '' || fields.length > 0) yield* endRecord();
}
