import type { Dispatcher } from 'undici';
import type { Clock } from './core/shared/clock.js';
import type { CheckProgress, DryRunSummary, PlanEvent, UploadEvent, UploadSummary } from './core/outcomes/events.js';
import { planFiles } from './core/check.js';
import type { ConventionRule } from './core/inputs/media-type.js';
import type { LibraryOptionValues } from './core/options.js';
import { uploadFiles } from './core/run.js';
import type { Shard } from './core/inputs/shard.js';

export * from './core/shared/errors.js';
export type * from './core/outcomes/events.js';
export type { PlannedFile, SkipReason } from './core/inputs/plan.js';
export type { ConventionRule, MediaTypeSource } from './core/inputs/media-type.js';
export type { BodyFormat } from './core/transfer/engine.js';
export type { Clock } from './core/shared/clock.js';
export type { JournalRecord } from './core/journal/journal.js';
export type { Shard } from './core/inputs/shard.js';
export { parseShard, shardOf } from './core/inputs/shard.js';
export { RECOGNISED_MEDIA_TYPES, CONVENTIONS } from './core/inputs/media-type.js';
export { SUPPORTED_EXTENSIONS, DEFAULT_MAX_FILE_SIZE } from './core/files/file-types.js';
export { HOSTS, ENV_NAMES } from './core/connection/hosts.js';

/**
 * What to upload and how each file is described. The options it shares with the CLI come from
 * the option table (those marked `library: 'plan'` in core/options.ts, described there and in
 * docs/options.md); the members below are the library's own.
 */
export interface PlanOptions extends LibraryOptionValues<'plan'> {
  /** Files, directories (walked recursively) and fast-glob patterns; optional with `manifest`. */
  paths?: readonly string[];
  /** Config rules tried before the built-in file-name conventions. */
  conventions?: readonly ConventionRule[];
  /** Take only this shard's files: a stable hash of (entity, path below the input root). */
  shard?: Shard;
  /** Where relative paths start (default: process.cwd()). */
  cwd?: string;
  /**
   * The proxy (its URL) for requests to the store of s3:// paths, by the URL of each (none:
   * direct). The CLI decides it as for Unit21's host: --proxy, HTTPS_PROXY, NO_PROXY.
   */
  s3Proxy?: (url: string) => string | undefined;
}

/**
 * Where and how to send. Besides PlanOptions, the options it shares with the CLI come from the
 * option table (those marked `library: 'upload'`; DEFAULTS holds their defaults); the members
 * below are the library's own.
 */
export interface UploadOptions extends PlanOptions, LibraryOptionValues<'upload'> {
  /** The org_name Unit21 gave you. */
  org: string;
  /** The API key, sent in a header and taken out of everything the run reports or throws. */
  apiKey: string;
  /** The config file the caller's settings came from, named in the report's header. */
  configPath?: string;
  /** The command line that started the run, proxy credentials masked, for the report's header (the key is taken out too). */
  commandLine?: string;
  onEvent?: (event: UploadEvent) => void;
  /** Called once with the number of files the run considers, when known (for progress and ETA). */
  onTotal?: (files: number) => void;
  /**
   * Called as the check before sending goes, once per input checked and once all are counted.
   * Giving it costs a second listing of the inputs (not of their contents) while they are checked.
   */
  onCheck?: (progress: CheckProgress) => void;
  /** Aborting it stops starting uploads; those in flight finish (a graceful stop). */
  drain?: AbortSignal;
  /** Aborting it also cuts the uploads in flight. */
  signal?: AbortSignal;
  /**
   * undici dispatcher to send through (default: a keep-alive pool sized to `concurrency`). A
   * request that gets no answer is flagged possibly_duplicated when undici's
   * `undici:request:bodySent` diagnostics channel said its body went out, as undici's own
   * dispatchers do; one that never publishes it leaves such requests unflagged. A request
   * failed before `undici:client:sendHeaders` (or bodySent) said it went out on a connection
   * counts toward the unreachable stop; through a dispatcher that publishes neither, every
   * failure before the first answer does.
   */
  dispatcher?: Dispatcher;
  /** Time source for backoff, pacing and request timeouts (tests pass a fake one). */
  clock?: Clock;
  /** Most threads that read and hash files, 1 to 16, started as files need them (default: U21_READER_THREADS, else one fewer than the cores, 1 to 4). */
  readerThreads?: number;
}

export { DEFAULTS, type Defaults } from './core/options.js';

/**
 * Checks every input without sending anything, reporting each file as a `planned` (or
 * `skipped`) event as it comes. Throws InputError at the end when inputs were invalid
 * (unless skipInvalid, which reports them as skipped).
 */
export function plan(options: PlanOptions & { onEvent?: (event: PlanEvent) => void }): Promise<DryRunSummary> {
  return planFiles(options);
}

/**
 * Checks every input, then uploads every valid file. Throws UsageError or InputError (nothing
 * sent) for bad options or inputs; otherwise resolves with the summary, also when files
 * failed or the run stopped early (`summary.stopped`). The key never appears in what it
 * reports or throws.
 */
export function upload(options: UploadOptions): Promise<UploadSummary> {
  return uploadFiles(options);
}
