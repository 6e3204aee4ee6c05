import { discover } from './core/discover.js';
import { InputError, UsageError } from './core/errors.js';
import { DEFAULT_MAX_FILE_SIZE } from './core/file-types.js';
import { resolveApiRoot } from './core/hosts.js';
import { compileRules, type ConventionRule } from './core/media-type.js';
import { entityIdProblem, preflight } from './core/preflight.js';
import { createDispatcher } from './core/transfer/client.js';
import { transfer, type BodyFormat } from './core/transfer/engine.js';
import type { DryRunSummary, PlanEvent, SkippedEvent, UploadEvent, UploadSummary, WarningEvent } from './core/events.js';
import type { Plan } from './core/plan.js';
import type { Dispatcher } from 'undici';

export * from './core/errors.js';
export type * from './core/events.js';
export type { Plan, PlannedFile, SkippedFile, SkipReason } from './core/plan.js';
export type { ConventionRule, MediaTypeSource } from './core/media-type.js';
export type { BodyFormat } from './core/transfer/engine.js';
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
  concurrency?: number;
  /** Upload the valid files and skip invalid ones (reason `invalid`) instead of refusing the run. */
  skipInvalid?: boolean;
  onEvent?: (event: UploadEvent) => void;
  signal?: AbortSignal;
  /** undici dispatcher to send through (default: a keep-alive pool sized to `concurrency`). */
  dispatcher?: Dispatcher;
}

export const DEFAULT_CONCURRENCY = 16;

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
  events.push(...result.skipped.map(skippedEvent));
  const summary: DryRunSummary = {
    event: 'summary',
    dry_run: true,
    planned: result.files.length,
    skipped: result.skipped.length,
    invalid: result.problems.length,
    bytes: result.bytes,
  };
  return { events, summary };
}

const warningEvent = (message: string): WarningEvent => ({ event: 'warning', message });
const skippedEvent = (s: Plan['skipped'][number]): SkippedEvent => ({ event: 'skipped', path: s.path, reason: s.reason, message: s.message });

/**
 * Plans, then uploads every valid file. Throws UsageError or InputError (nothing sent) for
 * bad options or inputs; otherwise resolves with the summary, also when files failed or the
 * key was refused (`summary.stopped === 'auth'`).
 */
export async function upload(options: UploadOptions): Promise<UploadSummary> {
  const started = Date.now();
  const apiRoot = resolveApiRoot(options);
  if (!options.org) throw new UsageError('--org is required', 'pass your Unit21 org name with --org or U21_ORG');
  if (!options.apiKey) throw new UsageError('no API key', 'set U21_API_KEY, or pass --api-key-file <file>');
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;

  const result = await plan(options);
  if (result.problems.length > 0 && !options.skipInvalid) throw new InputError(result.problems);
  const emit = options.onEvent ?? (() => {});
  const skipped = [
    ...result.skipped,
    ...result.problems.map((p) => ({ path: p.path, reason: 'invalid' as const, message: p.message })),
  ];
  for (const w of result.warnings) emit(warningEvent(w));
  for (const s of skipped) emit(skippedEvent(s));

  const dispatcher = options.dispatcher ?? createDispatcher(concurrency);
  try {
    const tally = await transfer(result.files, {
      apiRoot,
      org: options.org,
      apiKey: options.apiKey,
      format: options.format ?? 'multipart',
      concurrency,
      dispatcher,
      onEvent: emit,
      ...(options.signal && { signal: options.signal }),
    });
    return {
      event: 'summary',
      total: result.files.length + skipped.length,
      skipped: skipped.length,
      invalid: result.problems.length,
      ...tally,
      duration_ms: Date.now() - started,
    };
  } finally {
    if (!options.dispatcher) await dispatcher.close();
  }
}
