import { discover } from './core/discover.js';
import { InputError, UsageError } from './core/errors.js';
import { DEFAULT_MAX_FILE_SIZE, MAX_FILES_PER_REQUEST } from './core/file-types.js';
import { systemClock, type Clock } from './core/clock.js';
import { Journal } from './core/journal.js';
import { DEFAULT_RETRY_POLICY } from './core/transfer/retry-policy.js';
import { resolveApiRoot } from './core/hosts.js';
import { compileRules, type ConventionRule } from './core/media-type.js';
import { entityIdProblem, preflight } from './core/preflight.js';
import { createDispatcher } from './core/transfer/client.js';
import { transfer, type BodyFormat } from './core/transfer/engine.js';
import type { DryRunSummary, PlanEvent, SkippedEvent, UploadEvent, UploadSummary, WarningEvent } from './core/events.js';
import type { Plan, SkippedFile } from './core/plan.js';
import type { Dispatcher } from 'undici';

export * from './core/errors.js';
export type * from './core/events.js';
export type { Plan, PlannedFile, SkippedFile, SkipReason } from './core/plan.js';
export type { ConventionRule, MediaTypeSource } from './core/media-type.js';
export type { BodyFormat } from './core/transfer/engine.js';
export type { Clock } from './core/clock.js';
export type { JournalRecord } from './core/journal.js';
export { RECOGNISED_MEDIA_TYPES, CONVENTIONS } from './core/media-type.js';
export { SUPPORTED_EXTENSIONS, DEFAULT_MAX_FILE_SIZE } from './core/file-types.js';
export { HOSTS, ENV_NAMES } from './core/hosts.js';

/** What to upload and how each file is described. */
export interface PlanOptions {
  /** Files, directories (walked recursively) and fast-glob patterns. */
  paths: readonly string[];
  /** Every file goes to this entity. */
  entity: string;
  /** media_type for files without a sidecar one. */
  mediaType?: string;
  /** Infer media_type from file names (default true). */
  infer?: boolean;
  /** Config rules tried before the built-in file-name conventions. */
  conventions?: readonly ConventionRule[];
  maxFileSize?: number;
  /** Where relative paths start (default: process.cwd()). */
  cwd?: string;
}

/** Where and how to send. */
export interface UploadOptions extends PlanOptions {
  org: string;
  /** One of HOSTS' names; `baseUrl` wins when both are given. */
  env?: string;
  baseUrl?: string;
  apiKey: string;
  format?: BodyFormat;
  /** Most requests in flight (default 16); 429s lower it for a while. */
  concurrency?: number;
  /** Most requests started per second (default 100); 0 = no ceiling. */
  rate?: number;
  /** Files per request for the same entity, 1–10 (default 1). */
  batch?: number;
  /** Retries per request after the first try (default 5). */
  retries?: number;
  /** Per-request timeout in seconds (default 60). */
  timeout?: number;
  /** Stop starting uploads after the first file that finally failed. */
  failFast?: boolean;
  /** Send the same content to the same entity as often as it appears. */
  allowDuplicates?: boolean;
  /** Path of the append-only journal: outcomes are recorded there, earlier uploads skipped. */
  journal?: string;
  /** Upload the valid files and skip invalid ones (reason `invalid`) instead of refusing the run. */
  skipInvalid?: boolean;
  onEvent?: (event: UploadEvent) => void;
  /** Aborting it stops starting uploads; those in flight finish (a graceful stop). */
  drain?: AbortSignal;
  /** Aborting it also cuts the uploads in flight. */
  signal?: AbortSignal;
  /** undici dispatcher to send through (default: a keep-alive pool sized to `concurrency`). */
  dispatcher?: Dispatcher;
  /** Time source for backoff and pacing (tests pass a fake one). */
  clock?: Clock;
}

export const DEFAULTS = { concurrency: 16, rate: 100, batch: 1, retries: 5, timeout: 60 } as const;

/** Finds and checks every file without sending anything. */
export async function plan(options: PlanOptions): Promise<Plan> {
  const entityProblem = entityIdProblem(options.entity);
  if (entityProblem) throw new UsageError(`--entity: ${entityProblem}`, 'give the id your system uses for the entity, 1 to 128 characters');
  if (options.paths.length === 0) throw new UsageError('no files given', 'name files, directories or quoted glob patterns to upload');
  let rules;
  try {
    rules = compileRules(options.conventions ?? []);
  } catch (error) {
    throw new UsageError((error as Error).message, 'fix the conventions in your config file');
  }
  const found = await discover(options.paths, options.cwd ?? process.cwd());
  const result = await preflight(found.files, {
    entityId: options.entity,
    infer: options.infer ?? true,
    rules,
    maxFileSize: options.maxFileSize ?? DEFAULT_MAX_FILE_SIZE,
    ...(options.mediaType !== undefined && { mediaType: options.mediaType }),
  });
  result.problems.unshift(...found.problems);
  return result;
}

/** What preflight skips, with invalid inputs (allowed by skipInvalid) as reason `invalid`. */
function skippedOf(result: Plan): SkippedFile[] {
  return [...result.skipped, ...result.problems.map((p) => ({ path: p.path, reason: 'invalid' as const, message: p.message }))];
}

/** The planned/skipped events and summary a dry run reports. */
export function planEvents(result: Plan): { events: PlanEvent[]; summary: DryRunSummary } {
  const events: PlanEvent[] = result.warnings.map(warningEvent);
  events.push(...result.files.map((f): PlanEvent => ({
    event: 'planned',
    path: f.path,
    entity_id: f.entityId,
    media_type: f.mediaType ?? null,
    media_type_source: f.mediaTypeSource,
    bytes: f.bytes,
  })));
  const skipped = skippedOf(result);
  events.push(...skipped.map(skippedEvent));
  const summary: DryRunSummary = {
    event: 'summary',
    dry_run: true,
    planned: result.files.length,
    skipped: skipped.length,
    invalid: result.problems.length,
    bytes: result.bytes,
  };
  return { events, summary };
}

const warningEvent = (message: string): WarningEvent => ({ event: 'warning', message });
const skippedEvent = (s: SkippedFile): SkippedEvent => ({ event: 'skipped', path: s.path, reason: s.reason, message: s.message });

/**
 * Plans, then uploads every valid file. Throws UsageError or InputError (nothing sent) for
 * bad options or inputs; otherwise resolves with the summary, also when files failed or the
 * key was refused (`summary.stopped === 'auth'`).
 */
export async function upload(options: UploadOptions): Promise<UploadSummary> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const apiRoot = resolveApiRoot(options);
  if (!options.org) throw new UsageError('--org is required', 'pass your Unit21 org name with --org or U21_ORG');
  if (options.org === '.' || options.org === '..') throw new UsageError(`--org: "${options.org}" is not an org name`, 'pass the org_name Unit21 gave you');
  if (!options.apiKey) throw new UsageError('no API key', 'set U21_API_KEY, or pass --api-key-file <file>');
  const concurrency = options.concurrency ?? DEFAULTS.concurrency;
  const batch = options.batch ?? DEFAULTS.batch;
  if (!(batch >= 1 && batch <= MAX_FILES_PER_REQUEST)) throw new UsageError(`--batch: ${batch} is out of range`, `use 1 to ${MAX_FILES_PER_REQUEST}`);

  const result = await plan(options);
  if (result.problems.length > 0 && !options.skipInvalid) throw new InputError(result.problems);
  const emit = options.onEvent ?? (() => {});
  const skipped = skippedOf(result);
  for (const w of result.warnings) emit(warningEvent(w));
  for (const s of skipped) emit(skippedEvent(s));

  const journal = options.journal ? await openJournal(options.journal) : undefined;
  const dispatcher = options.dispatcher ?? createDispatcher(concurrency);
  try {
    const tally = await transfer(result.files, {
      apiRoot,
      org: options.org,
      apiKey: options.apiKey,
      format: options.format ?? 'multipart',
      concurrency,
      rate: options.rate ?? DEFAULTS.rate,
      batch,
      retry: { ...DEFAULT_RETRY_POLICY, retries: options.retries ?? DEFAULTS.retries },
      timeoutMs: (options.timeout ?? DEFAULTS.timeout) * 1000,
      failFast: options.failFast ?? false,
      allowDuplicates: options.allowDuplicates ?? false,
      dispatcher,
      clock,
      onEvent: emit,
      ...(journal && { journal }),
      ...(options.drain && { drain: options.drain }),
      ...(options.signal && { signal: options.signal }),
    });
    return {
      event: 'summary',
      total: result.files.length + skipped.length,
      invalid: result.problems.length,
      ...tally,
      skipped: skipped.length + tally.skipped,
      duration_ms: clock.now() - started,
    };
  } finally {
    journal?.close();
    if (!options.dispatcher) await dispatcher.close();
  }
}

async function openJournal(path: string): Promise<Journal> {
  try {
    return await Journal.open(path);
  } catch (error) {
    throw new UsageError(`--journal: cannot use ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'give a path to a writable file; it is created if missing');
  }
}
