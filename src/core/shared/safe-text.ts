/**
 * The characters that can act on a terminal or a reader rather than be read: control
 * characters (C0, DEL, C1: ESC sequences, line breaks), format characters (bidirectional
 * overrides such as U+202E, zero-width characters), the line and paragraph separators
 * U+2028 and U+2029, and lone surrogates. Every text the program shows or writes for a reader
 * has them escaped, in the form its medium keeps exact: one class, three encodings.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const UNSAFE_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** `\uXXXX` for a character, as two escapes (a surrogate pair) past the first plane. */
const escaped = (c: string) =>
  Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');

const SHOWN_AS: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A text for a terminal or a log line: each unsafe character shown as an escape (`\n`, `\u001b`, `\u202e`). */
export const shown = (text: string): string =>
  UNSAFE.test(text) ? text.replace(UNSAFE_ALL, (c) => SHOWN_AS[c] ?? escaped(c)) : text;

/**
 * A value as one line of JSON that reads back exactly, and in which nothing acts on a terminal
 * that prints it: JSON.stringify leaves DEL, C1 controls, U+2028/2029 and bidirectional
 * overrides as they are; here they are `\uXXXX` escapes, which JSON reads back as the same text.
 */
export const safeJson = (value: unknown, indent?: number): string => {
  const text = JSON.stringify(value, null, indent);
  // Indented, the line breaks between values are JSON's own (one inside a string is `\n`).
  return UNSAFE.test(text)
    ? text.replace(UNSAFE_ALL, (c) => (indent !== undefined && c === '\n' ? c : escaped(c)))
    : text;
};

/** A `\` that would read back as the start of an escape: `\u` and four hex digits. */
const ESCAPE_LOOKALIKE = /\\(?=u[0-9a-fA-F]{4})/;
const ESCAPE_LOOKALIKE_ALL = /\\(?=u[0-9a-fA-F]{4})/g;

/**
 * A CSV cell's text with each unsafe character as `\uXXXX` (and a `\` that would read as one,
 * as `\u005c`), so a terminal that prints the report acts on nothing, and `csvCellText` reads
 * back exactly what was written. Text with neither is left as it is.
 */
export const csvCellSafe = (text: string): string =>
  UNSAFE.test(text) || ESCAPE_LOOKALIKE.test(text)
    ? text.replace(ESCAPE_LOOKALIKE_ALL, '\\u005c').replace(UNSAFE_ALL, escaped)
    : text;

/** The text csvCellSafe was given. */
export const csvCellText = (cell: string): string =>
  cell.includes('\\u')
    ? cell.replace(/\\u([0-9a-fA-F]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    : cell;
