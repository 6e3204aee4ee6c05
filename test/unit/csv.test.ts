import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/core/shared/csv.js';

async function parse(...chunks: string[]) {
  const out = [];
  for await (const record of parseCsv(chunks)) out.push(record);
  return out;
}

describe('CSV', () => {
  it('reads quoted commas, doubled quotes and line breaks, with the line each record starts on', async () => {
    expect(await parse('a,b\n"x, y","say ""hi"""\n"two\nlines",z\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'say "hi"'] },
      { line: 3, fields: ['two\nlines', 'z'] },
    ]);
  });

  it('takes CRLF, CR-only and a missing final line end, and drops a BOM and blank lines', async () => {
    expect(await parse('\uFEFFa,b\r\n\r\n1,2\r3,4')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 3, fields: ['1', '2'] },
      { line: 4, fields: ['3', '4'] },
    ]);
  });

  it('keeps empty fields and works across chunk boundaries', async () => {
    expect(await parse('a,,"', 'q""', '",\r', '\nb')).toEqual([
      { line: 1, fields: ['a', '', 'q"', ''] },
      { line: 2, fields: ['b'] },
    ]);
  });

  it('names the line of a stray or unclosed quote', async () => {
    await expect(parse('a,b\nx"y,z\n')).rejects.toThrow(/line 2: a quote inside an unquoted field/);
    await expect(parse('a\n"open\nstill\n')).rejects.toThrow(/line 2: a quoted field is never closed/);
    await expect(parse('"a"b\n')).rejects.toThrow(/line 1: text after a closing quote/);
  });
});

describe('CSV records over a bound', () => {
  it('are reported as too long with their line, skipped as they stream by, and the next records read as usual', async () => {
    const out = [];
    for await (const record of parseCsv(
      ['a,b\n"', 'x'.repeat(50), '\nstill quoted",1\n', 'c,', ','.repeat(40), '\nd,e\n'],
      20,
    ))
      out.push(record);
    expect(out).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: [], tooLong: true },
      { line: 4, fields: [], tooLong: true },
      { line: 5, fields: ['d', 'e'] },
    ]);
  });
});
