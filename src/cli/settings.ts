import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { ConventionRule } from '../core/media-type.js';
import type { BodyFormat } from '../core/transfer/engine.js';
import { loadConfig } from './config.js';
import { flagOf, UPLOAD_OPTIONS, type OptionSpec } from './options.js';

/** Everything an upload run needs, merged: flags > environment > config file > defaults. */
export interface UploadSettings {
  org?: string;
  env?: string;
  baseUrl?: string;
  entity?: string;
  apiKeyFile?: string;
  mediaType?: string;
  infer: boolean;
  maxFileSize: number;
  skipInvalid: boolean;
  format: BodyFormat;
  concurrency: number;
  dryRun: boolean;
  json: boolean;
  conventions: ConventionRule[];
}

/** Merges the sources, then checks every value against its option's declaration. */
export async function resolveSettings(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<UploadSettings> {
  const config = await loadConfig(cwd, flags.config as string | undefined);
  const merged: Record<string, unknown> = {};
  for (const spec of UPLOAD_OPTIONS) {
    const fromFlag = flags[spec.key];
    const fromEnv = spec.env ? env[spec.env] : undefined;
    const fromConfig = config?.values[spec.key];
    if (fromFlag !== undefined) merged[spec.key] = parseValue(spec, fromFlag, flagOf(spec));
    else if (fromEnv !== undefined && fromEnv !== '') merged[spec.key] = parseValue(spec, fromEnv, spec.env!);
    else if (fromConfig !== undefined) merged[spec.key] = parseValue(spec, fromConfig, `${config!.filepath}: "${spec.key}"`);
    else if (spec.default !== undefined) merged[spec.key] = spec.default;
  }
  merged.conventions = config?.values.conventions ?? [];
  return merged as unknown as UploadSettings;
}

/** Checks one raw value; `origin` names the flag, variable or config key at fault. */
function parseValue(spec: OptionSpec, raw: unknown, origin: string): string | number | boolean {
  switch (spec.type) {
    case 'boolean':
      if (typeof raw !== 'boolean') throw new UsageError(`${origin}: must be true or false`, `got ${JSON.stringify(raw)}`);
      return raw;
    case 'integer': {
      const text = String(raw).trim();
      const value = Number(text.replace(/_/g, ''));
      const range = spec.max !== undefined ? `from ${spec.min} to ${spec.max}` : `of at least ${spec.min}`;
      if (!/^\d[\d_]*$/.test(text) || !Number.isSafeInteger(value) || value < (spec.min ?? 0) || value > (spec.max ?? Infinity)) {
        throw new UsageError(`${origin}: "${raw}" is not a valid value`, `use a whole number ${range}`);
      }
      return value;
    }
    case 'choice':
      if (typeof raw !== 'string' || !spec.choices!.includes(raw)) {
        throw new UsageError(`${origin}: "${raw}" is not a valid value`, `use one of ${spec.choices!.join(', ')}`);
      }
      return raw;
    case 'string':
      if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`${origin}: must not be empty`, `give a value for ${flagOf(spec)}`);
      return raw;
  }
}

/** The API key: `--api-key-file` (trimmed), else U21_API_KEY. Never echoed anywhere. */
export async function readApiKey(settings: UploadSettings, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  if (settings.apiKeyFile) {
    const path = resolve(cwd, settings.apiKeyFile);
    let key: string;
    try {
      key = (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw new UsageError(`--api-key-file: cannot read ${settings.apiKeyFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'point it at a file that holds only the key');
    }
    if (!key) throw new UsageError(`--api-key-file: ${settings.apiKeyFile} is empty`, 'put the API key in the file');
    return key;
  }
  const key = env.U21_API_KEY?.trim();
  if (!key) throw new UsageError('no API key', 'set U21_API_KEY, or pass --api-key-file <file>');
  return key;
}
