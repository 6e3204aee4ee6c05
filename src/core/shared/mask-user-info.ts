/**
 * A word with a URL's user-info masked (`http://user:pass@proxy` → `http://***@proxy`, also as
 * `--proxy=http://…`), found by parsing the URL as the tool itself does: a password holding a
 * space, an `@` or a `/` is masked whole. A word that does not parse but may hold user-info is
 * masked up to its last `@`.
 */
export function maskUserInfo(word: string): string {
  const option = /^--[\w-]+=/.exec(word)?.[0] ?? '';
  const value = word.slice(option.length);
  let url: URL | undefined;
  try {
    url = value.includes('://') ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url && (url.username !== '' || url.password !== '')) {
    const path = url.pathname === '/' && !value.endsWith('/') ? '' : url.pathname;
    return `${option}${url.protocol}//***@${url.host}${path}${url.search}${url.hash}`;
  }
  // Not a URL at all (a path such as `jobs@2024/report.csv`): nothing to mask.
  if (url || !value.includes('://')) return word;
  const start = value.indexOf('://') + 3;
  const at = value.lastIndexOf('@');
  return at >= start ? `${option}${value.slice(0, start)}***${value.slice(at)}` : word;
}
