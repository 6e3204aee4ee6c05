import { createHash } from 'node:crypto';
import { join } from 'node:path';

/**
 * Where journals live by default: `$XDG_STATE_HOME/u21-media`, else `~/.local/state/u21-media`
 * (the XDG base directory rule). Undefined when neither variable is set.
 */
export function stateDir(env: NodeJS.ProcessEnv): string | undefined {
  const base = env.XDG_STATE_HOME?.trim()
    ? env.XDG_STATE_HOME
    : env.HOME?.trim()
      ? join(env.HOME, '.local', 'state')
      : undefined;
  return base === undefined ? undefined : join(base, 'u21-media');
}

// Host and org as a file name can hold them; the hash keeps apart two that read the same.
const slug = (text: string) =>
  text
    .replace(/[^A-Za-z0-9.-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 80) || '_';

/** The default journal of one API host and org: `api.unit21.com_v1__acme__3f2a1c.jsonl`. */
export function defaultJournalName(apiRoot: string, org: string): string {
  const url = new URL(apiRoot);
  const hash = createHash('sha256')
    .update(JSON.stringify([apiRoot, org]))
    .digest('hex')
    .slice(0, 6);
  return `${slug(url.host + url.pathname)}__${slug(org)}__${hash}.jsonl`;
}
