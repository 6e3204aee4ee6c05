import { dirname, resolve } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import { ConfigError, SetupError } from '../core/shared/errors.js';
import { HOSTS, isLoopback } from '../core/connection/hosts.js';
import { compileRules, type ConventionRule } from '../core/inputs/media-type.js';
import { isPlainObject } from '../core/files/sidecar.js';
import { CONFIG_ONLY_KEYS, UPLOAD_OPTIONS, type OptionSpec } from '../core/options.js';

export interface LoadedConfig {
  filepath: string;
  /** Found by searching rather than named with --config: it may have come with a cloned repository. */
  found: boolean;
  values: Record<string, unknown>;
}

const NAME = 'u21media';
const SEARCH_PLACES = [
  'package.json',
  `.${NAME}rc`,
  `.${NAME}rc.json`,
  `.${NAME}rc.yaml`,
  `.${NAME}rc.yml`,
  `${NAME}.config.js`,
  `${NAME}.config.mjs`,
  `${NAME}.config.cjs`,
];

const ALLOWED = new Set<string>([
  ...UPLOAD_OPTIONS.filter((o) => o.inConfig !== false).map((o) => o.key),
  ...CONFIG_ONLY_KEYS,
]);

/** A config file found by searching may come with a cloned repository: it may not run code. */
const refuseCode = (filepath: string): never => {
  throw new ConfigError(
    `${filepath}: a JavaScript config file runs code, so it is loaded only when named with --config`,
    `pass --config ${filepath} to use it, or remove it`,
  );
};

/**
 * Finds the config file (or loads the named one) and checks its keys; undefined when there is
 * none. A file found by searching, rather than named with --config, may come with a cloned
 * repository: it may not run code (JavaScript), nor set what decides which files are read,
 * where they go, what is sent or what is remembered (the options the table marks `decides`),
 * nor send uploads to a host that is not Unit21's (loopback aside).
 */
export async function loadConfig(cwd: string, explicitPath?: string): Promise<LoadedConfig | undefined> {
  const explorer = cosmiconfig(NAME, {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: 'project',
    ...(!explicitPath && { loaders: { '.js': refuseCode, '.mjs': refuseCode, '.cjs': refuseCode } }),
  });
  let result;
  try {
    result = explicitPath ? await explorer.load(resolve(cwd, explicitPath)) : await explorer.search(cwd);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const where = explicitPath ?? (error as { filepath?: string }).filepath ?? 'config file';
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : (error as Error).message.replace(/\s+/g, ' ').trim();
    throw new ConfigError(
      `${where}: cannot load config (${reason})`,
      'fix the file, or pass --config with another one',
    );
  }
  if (!result || result.isEmpty) return undefined;
  const { filepath } = result;
  const config: unknown = result.config;
  if (!isPlainObject(config))
    throw new ConfigError(`${filepath}: config must be an object`, 'write it as {"org": "acme", …}');
  for (const key of Object.keys(config)) {
    if (key === 'apiKey') {
      throw new ConfigError(
        `${filepath}: a config file never holds the API key`,
        'remove "apiKey"; use U21_API_KEY or "apiKeyFile" instead',
      );
    }
    if (!ALLOWED.has(key)) {
      throw new ConfigError(`${filepath}: unknown key "${key}"`, `known keys: ${[...ALLOWED].join(', ')}`);
    }
  }
  if (!explicitPath) refuseUntrusted(filepath, config);
  const values: Record<string, unknown> = { ...config };
  if (values.conventions !== undefined) {
    if (!Array.isArray(values.conventions)) {
      throw new ConfigError(
        `${filepath}: "conventions" must be a list`,
        'write [{"glob": "*_poa.pdf", "media_type": "…"}]',
      );
    }
    try {
      await compileRules(values.conventions as ConventionRule[]);
    } catch (error) {
      throw new ConfigError(
        `${filepath}: ${(error as Error).message}`,
        'each rule is {"glob": "…", "media_type": "…"} or {"regex": "…", "media_type": "…"}',
      );
    }
  }
  // A key file named in the config is found beside the config, wherever the run starts.
  if (typeof values.apiKeyFile === 'string') values.apiKeyFile = resolve(dirname(filepath), values.apiKeyFile);
  return { filepath, found: !explicitPath, values };
}

const UNIT21_HOSTS = new Set(Object.values(HOSTS).map((url) => new URL(url).host));

const SPECS = new Map<string, OptionSpec>(UPLOAD_OPTIONS.map((spec) => [spec.key, spec]));

/** What a config file found by searching may not do: decide what only a named one may, or send uploads to a host that is not Unit21's. */
function refuseUntrusted(filepath: string, config: Record<string, unknown>) {
  // The file stays refused while it sets the key, whatever the command line says: the fix is in the file, or in trusting it.
  const trust = `or pass --config ${filepath} if you trust the file`;
  const problems: ConfigError[] = [];
  for (const key of Object.keys(config)) {
    const spec = SPECS.get(key);
    if (!spec?.decides) continue;
    const flag = spec.flags.replace(/^-\w, /, '').replace(/ <.*>$/, ' …');
    problems.push(
      new ConfigError(
        `${filepath}: "${key}" decides ${spec.decides}, so only a config file named with --config may set it; this one was found by searching (it may have come with a cloned repository)`,
        `take "${key}" out of it (and pass ${flag} yourself if you want it), ${trust}`,
      ),
    );
  }
  if (typeof config.baseUrl === 'string') {
    let url: URL | undefined;
    try {
      url = new URL(config.baseUrl);
    } catch {
      url = undefined; // refused later, as a bad URL
    }
    if (url && !UNIT21_HOSTS.has(url.host) && !isLoopback(url)) {
      problems.push(
        new ConfigError(
          `${filepath}: "baseUrl" sends uploads to ${url.host}, not a Unit21 host; a config file found by searching may name only Unit21's hosts or loopback`,
          `take "baseUrl" out of it (and pass --base-url yourself if you want it), ${trust}`,
        ),
      );
    }
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new SetupError(problems);
}
