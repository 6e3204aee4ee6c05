import { readFileSync } from 'node:fs';

/** The package's version, read when asked (for --version and the report's header). */
export const readVersion = (): string =>
  (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
