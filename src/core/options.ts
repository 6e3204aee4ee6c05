import { DEFAULT_MAX_FILE_SIZE, MAX_FILES_PER_REQUEST } from './files/file-types.js';
import { ENV_NAMES } from './connection/hosts.js';

type OptionType = 'string' | 'integer' | 'number' | 'boolean' | 'choice';

/**
 * The longest --timeout: one request carries at most 20 MB, which an hour moves over any link
 * that can upload at all; a longer wait only hides a dead connection.
 */
const MAX_TIMEOUT_S = 3600;

/** One option, declared once: it drives commander, env and config parsing, the library's option types, DEFAULTS and docs/options.md. */
export interface OptionSpec {
  /** camelCase key, as in the config file and the library's options. */
  key: string;
  /** commander flag syntax. */
  flags: string;
  description: string;
  type: OptionType;
  group: 'Target' | 'Files' | 'Sending' | 'Output';
  env?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  default?: string | number | boolean;
  /** For a value option that can also be turned off: the description of its `--no-` flag (the value is then false). */
  negatable?: string;
  /** Whether a config file may set it (false for per-run options). */
  inConfig?: boolean;
  /**
   * What it decides, when that is something only a config file named with --config (or a flag)
   * may decide: a config file found by searching may have come with a cloned repository.
   */
  decides?: string;
  /**
   * The library call that takes it as is: `plan` (plan() and upload()) or `upload` (upload()
   * only). Absent: the CLI's alone, or taken by the library in another form (`shard`).
   */
  library?: 'plan' | 'upload';
}

/** The `upload` command's options, declared once: the CLI's flags, env and config keys, the library's option types and DEFAULTS. */
export const OPTION_TABLE = [
  {
    key: 'org',
    library: 'plan',
    flags: '--org <name>',
    env: 'U21_ORG',
    type: 'string',
    group: 'Target',
    description: 'Unit21 org_name (required)',
  },
  // Its value is any string, as upload() has always taken: resolveApiRoot names an unknown environment.
  {
    key: 'env',
    library: 'plan',
    flags: '--env <name>',
    env: 'U21_ENV',
    type: 'choice',
    choices: ENV_NAMES as readonly string[],
    group: 'Target',
    description: `Unit21 environment: ${ENV_NAMES.join(', ')}`,
  },
  {
    key: 'baseUrl',
    library: 'plan',
    flags: '--base-url <url>',
    env: 'U21_BASE_URL',
    type: 'string',
    group: 'Target',
    description: 'any API base URL, with or without /v1 (wins over --env)',
  },
  {
    key: 'entity',
    library: 'plan',
    flags: '--entity <id>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description: 'every file goes to this entity',
  },
  {
    key: 'event',
    library: 'plan',
    flags: '--event <id>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description: 'every file goes to this event (media_type required)',
  },
  {
    key: 'alert',
    library: 'plan',
    flags: '--alert <id>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description: 'every file goes to this alert (its unit21_id)',
  },
  {
    key: 'case',
    library: 'plan',
    flags: '--case <id>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description: 'every file goes to this case (its unit21_id)',
  },
  {
    key: 'entityFrom',
    decides: 'where each file goes',
    library: 'plan',
    flags: '--entity-from <rule>',
    type: 'choice',
    choices: ['dir', 'prefix'],
    group: 'Target',
    description: "each file's entity: dir = its folder's name, prefix = its name before __",
  },
  {
    key: 'shard',
    flags: '--shard <k/n|auto>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description:
      'take only shard k of n of the files; auto reads the job index of Kubernetes Indexed Jobs or AWS Batch',
  },
  {
    key: 'shardTotal',
    flags: '--shard-total <n>',
    env: 'U21_SHARD_TOTAL',
    type: 'integer',
    min: 1,
    group: 'Target',
    inConfig: false,
    description: 'the n for --shard auto',
  },
  {
    key: 'manifest',
    library: 'plan',
    flags: '--manifest <file>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description: 'CSV or JSONL listing path, entity_id (or alert_id, case_id), media_type, custom_data per file',
  },
  {
    key: 'retryFailed',
    library: 'plan',
    flags: '--retry-failed <report>',
    type: 'string',
    group: 'Target',
    inConfig: false,
    description: 'upload again the files a --report lists as failed or not_sent',
  },
  {
    key: 'retryElsewhere',
    library: 'plan',
    flags: '--retry-elsewhere',
    type: 'boolean',
    default: false,
    group: 'Target',
    inConfig: false,
    description:
      "with --retry-failed: send the files to this run's host and org although the report's run sent them to another",
  },
  {
    key: 'apiKeyFile',
    decides: 'which key is sent',
    flags: '--api-key-file <path>',
    type: 'string',
    group: 'Target',
    description: 'read the API key from this file (otherwise U21_API_KEY)',
  },
  {
    key: 'mediaType',
    library: 'plan',
    flags: '--media-type <type>',
    type: 'string',
    group: 'Files',
    inConfig: false,
    description: 'media_type for files without a sidecar one',
  },
  {
    key: 'infer',
    library: 'plan',
    flags: '--no-infer',
    type: 'boolean',
    default: true,
    group: 'Files',
    description: 'do not infer media_type from file names',
  },
  {
    key: 'maxFileSize',
    library: 'plan',
    flags: '--max-file-size <bytes>',
    type: 'integer',
    min: 1,
    default: DEFAULT_MAX_FILE_SIZE,
    group: 'Files',
    description: 'refuse larger files before sending',
  },
  {
    key: 'sniff',
    decides: 'what is checked before sending',
    library: 'plan',
    flags: '--no-sniff',
    type: 'boolean',
    default: true,
    group: 'Files',
    description: "do not check that each file's content is what its extension says (and is not cut short)",
  },
  {
    key: 'convert',
    decides: 'the bytes sent',
    library: 'plan',
    flags: '--convert',
    type: 'boolean',
    default: false,
    group: 'Files',
    description: 'send HEIC/HEIF, AVIF and WebP photos as JPEG (converted copies; originals untouched)',
  },
  {
    key: 'fit',
    decides: 'the bytes sent',
    library: 'plan',
    flags: '--fit',
    type: 'boolean',
    default: false,
    group: 'Files',
    description: 'send JPEG, PNG and TIFF images over --max-file-size as JPEG downscaled to fit (orientation applied)',
  },
  {
    key: 'stripLocation',
    decides: 'the bytes sent',
    library: 'plan',
    flags: '--strip-location',
    type: 'boolean',
    default: false,
    group: 'Files',
    description:
      'take GPS metadata (EXIF and XMP) out of JPEG, PNG and TIFF images before sending; nothing else changes',
  },
  {
    key: 'followLinks',
    decides: 'which files are read',
    library: 'plan',
    flags: '--follow-links',
    type: 'boolean',
    default: false,
    group: 'Files',
    description: "while walking, also follow links to files outside the folder (or the glob's base)",
  },
  {
    key: 's3Endpoint',
    decides: 'where s3:// paths are read from',
    library: 'plan',
    flags: '--s3-endpoint <url>',
    env: 'AWS_ENDPOINT_URL_S3',
    type: 'string',
    group: 'Files',
    description:
      'read s3:// paths from this S3-compatible store (MinIO, R2, Ceph), addressed path-style; otherwise AWS S3',
  },
  {
    key: 'skipInvalid',
    decides: 'which files are sent',
    library: 'plan',
    flags: '--skip-invalid',
    type: 'boolean',
    default: false,
    group: 'Files',
    description: 'upload the valid files even when some inputs are invalid',
  },
  {
    key: 'format',
    library: 'plan',
    flags: '--format <format>',
    type: 'choice',
    choices: ['multipart', 'json'],
    default: 'multipart',
    group: 'Sending',
    description: 'body format: multipart, or json with base64 media',
  },
  {
    key: 'concurrency',
    library: 'upload',
    flags: '--concurrency <n>',
    type: 'integer',
    min: 1,
    max: 256,
    default: 16,
    group: 'Sending',
    description: 'most requests in flight (429s lower it for a while)',
  },
  {
    key: 'rate',
    library: 'upload',
    flags: '--rate <n>',
    type: 'number',
    min: 0,
    default: 100,
    group: 'Sending',
    description: 'most requests started per second; 0 = no limit (Unit21 allows 200 per IP)',
  },
  {
    key: 'rateTotal',
    flags: '--rate-total <n>',
    env: 'U21_RATE_TOTAL',
    type: 'number',
    min: 0.001,
    group: 'Sending',
    description: 'requests per second for all shards of --shard together (one egress IP): each shard takes its share',
  },
  {
    key: 'batch',
    library: 'upload',
    flags: '--batch <n>',
    type: 'integer',
    min: 1,
    max: MAX_FILES_PER_REQUEST,
    default: 1,
    group: 'Sending',
    description: 'files per request for the same entity (at most 20 MB of files)',
  },
  {
    key: 'retries',
    library: 'upload',
    flags: '--retries <n>',
    type: 'integer',
    min: 0,
    max: 100,
    default: 5,
    group: 'Sending',
    description: 'retries per request after the first try',
  },
  {
    key: 'timeout',
    library: 'upload',
    flags: '--timeout <s>',
    type: 'number',
    min: 0.001,
    max: MAX_TIMEOUT_S,
    default: 60,
    group: 'Sending',
    description: 'per-request timeout in seconds',
  },
  // No env of its own: HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read as curl reads them (core/connection/proxy.ts).
  {
    key: 'proxy',
    decides: 'where uploads go',
    library: 'upload',
    flags: '--proxy <url>',
    type: 'string',
    group: 'Sending',
    description: 'send through this HTTP CONNECT proxy (wins over HTTPS_PROXY / HTTP_PROXY; NO_PROXY still applies)',
  },
  {
    key: 'journal',
    decides: 'what is remembered',
    library: 'plan',
    flags: '--journal <file>',
    type: 'string',
    negatable: 'keep no journal: a rerun sends every file again',
    group: 'Sending',
    description:
      'append outcomes here, and skip files it records as uploaded (default: one journal per API host and org in $XDG_STATE_HOME/u21-media, else ~/.local/state/u21-media)',
  },
  {
    key: 'resendUnknown',
    decides: 'what is sent again',
    library: 'plan',
    flags: '--no-resend-unknown',
    type: 'boolean',
    default: true,
    group: 'Sending',
    description:
      'skip (unknown_outcome) what an earlier run sent without an answer, instead of sending it again flagged possibly_duplicated',
  },
  {
    key: 'adoptOldRecords',
    library: 'plan',
    flags: '--adopt-old-records',
    type: 'boolean',
    default: false,
    group: 'Sending',
    inConfig: false,
    description:
      "take the --journal's records from before records named their API host as sent to this run's host (they are rewritten so, once)",
  },
  {
    key: 'failFast',
    library: 'upload',
    flags: '--fail-fast',
    type: 'boolean',
    default: false,
    group: 'Sending',
    description: 'stop starting uploads after the first failed file',
  },
  {
    key: 'allowDuplicates',
    decides: 'what is sent again',
    library: 'plan',
    flags: '--allow-duplicates',
    type: 'boolean',
    default: false,
    group: 'Sending',
    description: 'send the same content to the same entity as often as it appears',
  },
  {
    key: 'dryRun',
    flags: '--dry-run',
    type: 'boolean',
    default: false,
    group: 'Sending',
    inConfig: false,
    description: 'check everything and print the plan; send nothing',
  },
  {
    key: 'report',
    library: 'upload',
    flags: '--report <file>',
    type: 'string',
    group: 'Output',
    inConfig: false,
    description: 'write one row per file to this .json or .csv report',
  },
  {
    key: 'json',
    flags: '--json',
    type: 'boolean',
    default: false,
    group: 'Output',
    description: 'newline-delimited JSON events on stdout',
  },
  {
    key: 'quiet',
    flags: '-q, --quiet',
    type: 'boolean',
    default: false,
    group: 'Output',
    description: 'only failures, errors and the summary',
  },
  {
    key: 'verbose',
    flags: '-v, --verbose',
    type: 'boolean',
    default: false,
    group: 'Output',
    description: 'a line per upload and per request attempt',
  },
  {
    key: 'color',
    flags: '--no-color',
    type: 'boolean',
    default: true,
    group: 'Output',
    description: 'no colours (also NO_COLOR=1)',
  },
  {
    key: 'config',
    flags: '--config <file>',
    type: 'string',
    group: 'Output',
    inConfig: false,
    description: 'read this config file instead of searching for one',
  },
] as const satisfies readonly OptionSpec[];

/** The same table, as plain OptionSpecs: for code that reads any option's optional fields. */
export const UPLOAD_OPTIONS: readonly OptionSpec[] = OPTION_TABLE;

type Spec = (typeof OPTION_TABLE)[number];

/** An option's value: string → string, integer and number → number, boolean → boolean, choice → the union of its choices. */
type ValueOf<S extends OptionSpec> =
  | (S extends { type: 'choice'; choices: readonly (infer C)[] }
      ? C
      : { string: string; integer: number; number: number; boolean: boolean; choice: string }[S['type']])
  | (S extends { negatable: string } ? false : never);

/** Every option's value, required where the table gives a default (what merged settings hold). */
export type OptionValues = { [S in Spec as S extends { default: unknown } ? S['key'] : never]: ValueOf<S> } & {
  [S in Spec as S extends { default: unknown } ? never : S['key']]?: ValueOf<S>;
};

/** The options a library call takes from the table, all optional: the library applies DEFAULTS. */
export type LibraryOptionValues<Call extends 'plan' | 'upload'> = {
  [S in Extract<Spec, { library: Call }> as S['key']]?: ValueOf<S>;
};

/** The library's defaults, one per option it takes that has one: `{ concurrency: 16, rate: 100, ... }`. */
export type Defaults = {
  readonly [S in Extract<Spec, { library: string; default: unknown }> as S['key']]: S['default'];
};

/** The defaults upload() and plan() apply, from the table. */
export const DEFAULTS: Defaults = Object.freeze(
  Object.fromEntries(
    UPLOAD_OPTIONS.filter((spec) => spec.library !== undefined && spec.default !== undefined).map((spec) => [
      spec.key,
      spec.default,
    ]),
  ),
) as Defaults;

/** Keys a config file may hold beyond the options. */
export const CONFIG_ONLY_KEYS = ['conventions'] as const;

/** An option's long flag as users name it: `--max-file-size`, `--infer` for `--no-infer`, `--quiet` for `-q, --quiet`. */
export const flagOf = (spec: OptionSpec): string => /--[\w-]+/.exec(spec.flags)![0].replace(/^--no-/, '--');
