/** One line of a text file, or the note that it was too long to read (its text is never held); `at`: the byte it starts at. */
export type Line = { line: number; at: number; text: string } | { line: number; at: number; tooLong: true };

/**
 * Splits a byte stream into lines (LF or CRLF), numbered from 1, each decoded as UTF-8. A line
 * over `maxBytes` is skipped as it streams by and reported as too long, so one hostile line
 * cannot take the memory of the run. A last line without its line end is yielded too.
 */
export async function* boundedLines(
  input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  maxBytes: number,
): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooLong = false;
  let line = 0;
  /** Where the line being read starts, and the bytes before the chunk being read. */
  let at = 0;
  let before = 0;
  const take = (piece: Buffer) => {
    if (tooLong) return;
    size += piece.length;
    if (size > maxBytes) {
      tooLong = true;
      parts = [];
    } else if (piece.length > 0) parts.push(piece);
  };
  const end = (): Line => {
    line++;
    const result: Line = tooLong ? { line, at, tooLong: true } : { line, at, text: decode(parts) };
    [parts, size, tooLong] = [[], 0, false];
    return result;
  };
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let from = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, from)) {
      take(chunk.subarray(from, newline));
      yield end();
      from = newline + 1;
      at = before + from;
    }
    // Copied: a stream may reuse its chunk's memory.
    if (from < chunk.length) take(Buffer.from(chunk.subarray(from)));
    before += chunk.length;
  }
  if (size > 0 || tooLong) yield end();
}

function decode(parts: Buffer[]): string {
  const text = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}
