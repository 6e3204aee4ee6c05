import { describe, expect, it } from 'vitest';
import { csvCellSafe, csvCellText, safeJson, shown } from '../../src/core/shared/safe-text.js';

/** Texts an attacker would put in a file name or a server message. */
const HOSTILE = [
  'title\u001b]0;pwned\u0007.jpg',
  'clear\u001b[2J\u001b[H.jpg',
  'line\n✔ 10 of 10 files uploaded',
  'passport_\u202egpj.exe',
  'a\u2028b\u2029c',
  'c1\u009b31m',
  'del\u007f',
  'zero\u200bwidth\ufeff',
  'tag\u{e0041}',
  'lone\ud800',
];

describe('the characters that act on a terminal', () => {
  it.each(HOSTILE)('are shown as escapes on a terminal line: %j', (text) => {
    const line = shown(text);
    expect(line).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
    expect(shown('plain_name-1.jpg')).toBe('plain_name-1.jpg');
  });

  it('shows line breaks and ESC readably', () => {
    expect(shown('a\nb\r\tc\u001b[2J\u202e')).toBe('a\\nb\\r\\tc\\u001b[2J\\u202e');
  });

  it.each(HOSTILE)('are escaped in JSON that reads back exactly: %j', (text) => {
    const json = safeJson({ path: text });
    expect(json).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
    expect((JSON.parse(json) as { path: string }).path).toBe(text);
    const indented = safeJson({ path: text, more: [1] }, 2);
    expect(indented.replace(/\n/g, '')).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
    expect(JSON.parse(indented)).toEqual({ path: text, more: [1] });
  });

  it.each([...HOSTILE, 'C:\\users\\u0041\\x.jpg', '\\u005c', 'plain', '\\'])(
    'are escaped in a CSV cell that reads back exactly: %j',
    (text) => {
      const cell = csvCellSafe(text);
      expect(cell).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
      expect(csvCellText(cell)).toBe(text);
    },
  );

  it('leaves a CSV cell without them as it is', () => {
    expect(csvCellSafe('kyc/cust-42/passport front (1).jpg')).toBe('kyc/cust-42/passport front (1).jpg');
    expect(csvCellSafe('C:\\data\\x.jpg')).toBe('C:\\data\\x.jpg');
  });
});
