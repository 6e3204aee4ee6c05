/**
 * The parts of a message (a status, an error code, its message) joined, each left out when
 * another already says it as a whole word: `500 internal_error`, not `500 internal_error
 * internal_error`; `read ECONNRESET`, not `ECONNRESET read ECONNRESET`.
 */
export function joinDistinct(parts: ReadonlyArray<string | number | null | undefined>, separator = ' '): string {
  const given = parts.filter((part) => part !== null && part !== undefined && part !== '').map(String);
  const saidElsewhere = (part: string, i: number) =>
    given.some((other, j) => (other === part ? j < i : j !== i && hasWord(other, part)));
  return given.filter((part, i) => !saidElsewhere(part, i)).join(separator);
}

const hasWord = (text: string, word: string) =>
  new RegExp(`(?<![\\w.-])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`).test(text);
