import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { closest } from '../core/shared/did-you-mean.js';
import { UsageError } from '../core/shared/errors.js';
import type { ConventionRule } from '../core/inputs/media-type.js';
import { loadConfig } from './config.js';
import { numberFrom } from './number.js';
import { flagOf, UPLOAD_OPTIONS, type OptionSpec, type OptionValues } from '../core/options.js';

/**
 * Everything an upload run needs, merged: flags > environment > config file > defaults. Its
 * options come from the option table: those with a default are always set.
 */
export interface UploadSettings extends OptionValues {
  conventions: ConventionRule[];
  configPath?: string;
  /** The config file was found by searching, not named with --config: what it set is said on the first line. */
  configFound?: boolean;
  /** Where each value came from, for precedence between related options and for messages. */
  sources: Partial<Record<string, Source>>;
}

type Source = 'flag' | 'env' | 'config' | 'default';
const RANK: Record<Source, number> = { flag: 3, env: 2, config: 1, default: 0 };

/** Merges the sources, then checks every value against its option's declaration. */
export async function resolveSettings(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<UploadSettings> {
  const config = await loadConfig(cwd, flags.config as string | undefined);
  const merged: Record<string, unknown> = {};
  const sources: Partial<Record<string, Source>> = {};
  const set = (key: string, value: unknown, source: Source) => {
    merged[key] = value;
    sources[key] = source;
  };
  for (const spec of UPLOAD_OPTIONS) {
    const fromFlag = flags[spec.key];
    const fromEnv = spec.env ? env[spec.env] : undefined;
    const fromConfig = config?.values[spec.key];
    if (fromFlag !== undefined) set(spec.key, parseValue(spec, fromFlag, flagOf(spec)), 'flag');
    else if (fromEnv !== undefined && fromEnv !== '') set(spec.key, parseValue(spec, fromEnv, spec.env!), 'env');
    else if (fromConfig !== undefined)
      set(spec.key, parseValue(spec, fromConfig, `${config!.filepath}: "${spec.key}"`), 'config');
    else if (spec.default !== undefined) set(spec.key, spec.default, 'default');
  }
  // --base-url beats --env only from the same or a stronger source: `--env` typed on the
  // command line must not be overridden by a U21_BASE_URL left in the environment.
  if (merged.baseUrl !== undefined && merged.env !== undefined && RANK[sources.env!] > RANK[sources.baseUrl!]) {
    delete merged.baseUrl;
  }
  merged.conventions = config?.values.conventions ?? [];
  merged.sources = sources;
  if (config) {
    merged.configPath = config.filepath;
    merged.configFound = config.found;
  }
  return merged as unknown as UploadSettings;
}

/** Checks one raw value; `origin` names the flag, variable or config key at fault. */
function parseValue(spec: OptionSpec, raw: unknown, origin: string): string | number | boolean {
  switch (spec.type) {
    case 'boolean':
      if (typeof raw !== 'boolean')
        throw new UsageError(`${origin}: must be true or false`, `got ${JSON.stringify(raw)}`);
      return raw;
    case 'integer':
      return numberFrom(raw, origin, { min: spec.min, max: spec.max, whole: true });
    case 'number':
      return numberFrom(raw, origin, { min: spec.min, max: spec.max });
    case 'choice':
      if (typeof raw !== 'string' || !spec.choices!.includes(raw)) {
        const near = typeof raw === 'string' ? closest(raw, spec.choices!) : undefined;
        throw new UsageError(
          `${origin}: "${String(raw)}" is not a valid value${near ? `; did you mean ${near}?` : ''}`,
          `use one of ${spec.choices!.join(', ')}`,
        );
      }
      return raw;
    case 'string':
      if (raw === false && spec.negatable) return false;
      if (typeof raw !== 'string' || raw.trim() === '')
        throw new UsageError(`${origin}: must not be empty`, `give a value for ${flagOf(spec)}`);
      return raw;
  }
}

/**
 * Whether a key file's name may be the key itself, pasted in the wrong place: a long run of
 * key characters (a JWT's dots included), letters and digits, in any part of it. A long file
 * name is left unshown too: better a name not said than a key said.
 */
const mayBeKey = (path: string) =>
  path
    .split(/[/\\]/)
    .some((part) => part.length >= 24 && /^[\w+=.~-]+$/.test(part) && /\d/.test(part) && /[a-z]/i.test(part));

/** The API key and where it came from: `--api-key-file`, else U21_API_KEY, else the config's apiKeyFile. Never echoed. */
export async function readApiKey(
  settings: UploadSettings,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ key: string; source: string }> {
  const fromFile =
    settings.apiKeyFile !== undefined && (settings.sources.apiKeyFile === 'flag' || !env.U21_API_KEY?.trim());
  const source = fromFile
    ? settings.sources.apiKeyFile === 'flag'
      ? '--api-key-file'
      : `"apiKeyFile" in ${settings.configPath}`
    : 'U21_API_KEY';
  let key: string | undefined;
  if (fromFile) {
    try {
      key = (await readFile(resolve(cwd, settings.apiKeyFile!), 'utf8')).trim();
    } catch (error) {
      const file = settings.apiKeyFile!;
      const named = mayBeKey(file)
        ? 'the key file (its name is not shown: it looks like a key, pasted in place of a path)'
        : `the key file ${file}`;
      throw new UsageError(
        `${source}: cannot read ${named} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        'point it at a file that holds only the key',
      );
    }
  } else {
    key = env.U21_API_KEY?.trim();
  }
  if (!key)
    throw new UsageError(
      fromFile ? `${source}: the key file is empty` : 'no API key',
      'set U21_API_KEY, or pass --api-key-file <file>',
    );
  // An HTTP header cannot carry these; better one clear error than one failure per file.
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new UsageError(
      `${source}: the API key holds spaces, line breaks or non-ASCII characters`,
      'the file (or variable) must hold only the key',
    );
  }
  return { key, source };
}
