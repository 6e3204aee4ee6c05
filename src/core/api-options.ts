import type { Dispatcher } from 'undici';
import type { Clock } from './shared/clock.js';
import type { CheckProgress, UploadEvent } from './outcomes/events.js';
import type { ConventionRule } from './inputs/media-type.js';
import type { LibraryOptionValues } from './options.js';
import type { Shard } from './inputs/shard.js';

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
