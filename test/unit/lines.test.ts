import { describe, expect, it } from 'vitest';
import { boundedLines } from '../../src/core/shared/lines.js';

async function lines(chunks: string[], max = 10) {
  const out = [];
  for await (const line of boundedLines(
    chunks.map((c) => Buffer.from(c)),
    max,
  ))
    out.push(line);
  return out;
}

describe('bounded lines', () => {
  it('splits on LF and CRLF across chunks, numbering from 1, with a last line without its end, each at its first byte', async () => {
    expect(await lines(['ab\r\ncd', 'e\n\nf'])).toEqual([
      { line: 1, at: 0, text: 'ab' },
      { line: 2, at: 4, text: 'cde' },
      { line: 3, at: 8, text: '' },
      { line: 4, at: 9, text: 'f' },
    ]);
  });

  it('reports a line over the bound as too long, never holding it, and goes on after it', async () => {
    expect(await lines(['short\n', 'x'.repeat(8), 'x'.repeat(8), 'x'.repeat(8), '\nnext\n'])).toEqual([
      { line: 1, at: 0, text: 'short' },
      { line: 2, at: 6, tooLong: true },
      { line: 3, at: 31, text: 'next' },
    ]);
  });

  it('decodes UTF-8 split between chunks', async () => {
    const bytes = Buffer.from('café\n');
    const out = [];
    for await (const line of boundedLines([bytes.subarray(0, 4), bytes.subarray(4)], 10)) out.push(line);
    expect(out).toEqual([{ line: 1, at: 0, text: 'café' }]);
  });
});
