import { discover } from './core/discover.js';
import { readManifest } from './core/manifest.js';
import { ReportWriter } from './core/report.js';
import { entityIdProblem, type EntitySource } from './core/route.js';
import type { Shard } from './core/shard.js';
import { InputError, UsageError, type Problem } from './core/errors.js';
import { MAX_FILES_PER_REQUEST } from './core/file-types.js';
import { systemClock, type Clock } from './core/clock.js';
import { Journal } from './core/journal.js';
import { JournalLock } from './core/journal-lock.js';
import { OutcomeSink } from './core/outcome-sink.js';
import { createRedactor, type Redact } from './core/redact.js';
import { realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DEFAULT_RETRY_POLICY } from './core/transfer/retry-policy.js';
import { resolveApiRoot } from './core/hosts.js';
import { compileRules, type ConventionRule } from './core/media-type.js';
import { preflight } from './core/preflight.js';
import { CheckedSizes } from './core/checked-sizes.js';
import { emptyTally, eventOf, type DryRunSummary, type PlanEvent, type UploadEvent, type UploadSummary } from './core/events.js';
import type { Checked } from './core/plan.js';
import type { Dispatcher } from 'undici';
import { DEFAULTS, type LibraryOptionValues } from './core/options.js';

export * from './core/errors.js';
export type * from './core/events.js';
export type { PlannedFile, SkipReason } from './core/plan.js';
export type { ConventionRule, MediaTypeSource } from './core/media-type.js';
export type { BodyFormat } from './core/transfer/engine.js';
export type { Clock } from './core/clock.js';
export type { JournalRecord } from './core/journal.js';
export type { Shard } from './core/shard.js';
export { parseShard, shardOf } from './core/shard.js';
export { RECOGNISED_MEDIA_TYPES, CONVENTIONS } from './core/media-type.js';
export { SUPPORTED_EXTENSIONS, DEFAULT_MAX_FILE_SIZE } from './core/file-types.js';
export { HOSTS, ENV_NAMES } from './core/hosts.js';

/**
 * What to upload and how each file is described. The options it shares with the CLI come from
 * the option table (those marked `library: 'plan'` in core/options.ts, described there and in
 * the README's option list); the members below are the library's own.
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
  onEvent?: (event: UploadEvent) => void;
  /** Called once with the number of files the run considers, when known (for progress and ETA). */
  onTotal?: (files: number) => void;
  /** Aborting it stops starting uploads; those in flight finish (a graceful stop). */
  drain?: AbortSignal;
  /** Aborting it also cuts the uploads in flight. */
  signal?: AbortSignal;
  /**
   * undici dispatcher to send through (default: a keep-alive pool sized to `concurrency`). A
   * request that gets no answer is flagged possibly_duplicated when undici's
   * `undici:request:bodySent` diagnostics channel said its body went out, as undici's own
   * dispatchers do; one that never publishes it leaves such requests unflagged.
   */
  dispatcher?: Dispatcher;
  /** Time source for backoff and pacing (tests pass a fake one). */
  clock?: Clock;
}

export { DEFAULTS, type Defaults } from './core/options.js';

/** The checked inputs as a stream, lazily: a 300,000-file folder is never held whole; and a cheap count of them. */
interface CheckedInputs {
  checked: (checkedSizes?: CheckedSizes) => AsyncGenerator<Checked>;
  count: () => Promise<number>;
}

function checkedInputs(options: PlanOptions): CheckedInputs {
  const cwd = options.cwd ?? process.cwd();
  const entity = entitySourceOf(options);
  const paths = options.paths ?? [];
  if (entity.kind === 'manifest' && paths.length > 0) {
    throw new UsageError('path arguments and --manifest both name files', 'list every file in the manifest, or drop --manifest');
  }
  if (entity.kind !== 'manifest' && paths.length === 0) throw new UsageError('no files given', 'name files, folders or quoted glob patterns to upload');
  let rules;
  try {
    rules = compileRules(options.conventions ?? []);
  } catch (error) {
    throw new UsageError((error as Error).message, 'fix the conventions in your config file');
  }
  const settings = {
    entity,
    infer: options.infer ?? DEFAULTS.infer,
    rules,
    maxFileSize: options.maxFileSize ?? DEFAULTS.maxFileSize,
    ...(options.mediaType !== undefined && { mediaType: options.mediaType }),
    ...(options.shard && { shard: options.shard }),
  };
  const found = () => (entity.kind === 'manifest' ? readManifest(entity.path, cwd) : discover(paths, cwd, { followLinks: options.followLinks ?? DEFAULTS.followLinks }));
  return {
    checked: (checkedSizes?: CheckedSizes) => preflight(found(), checkedSizes ? { ...settings, checkedSizes } : settings),
    // Listing without checking: no stat, no sidecar read.
    count: async () => {
      let n = 0;
      for await (const _ of found()) n++;
      return n;
    },
  };
}

/** Exactly one of entity, entityFrom and manifest decides where files go. */
function entitySourceOf(options: PlanOptions): EntitySource {
  const given = [
    options.entity !== undefined && '--entity',
    options.event !== undefined && '--event',
    options.entityFrom !== undefined && '--entity-from',
    options.manifest !== undefined && '--manifest',
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0 ? 'no entity given' : `${given.join(' and ')} both decide the entity`,
      'use exactly one of --entity <id>, --entity-from dir|prefix, --manifest <file>, --event <id>',
    );
  }
  if (options.manifest !== undefined) return { kind: 'manifest', path: options.manifest };
  if (options.entityFrom !== undefined) {
    if (options.entityFrom !== 'dir' && options.entityFrom !== 'prefix') throw new UsageError(`--entity-from: "${options.entityFrom}" is not a valid value`, 'use dir or prefix');
    return { kind: options.entityFrom };
  }
  const [flag, id, what] = options.event !== undefined ? ['--event', options.event, 'event id'] : ['--entity', options.entity!, 'entity id'];
  const problem = entityIdProblem(id, what);
  if (problem) throw new UsageError(`${flag}: ${problem}`, 'give the id your system uses for it, 1 to 128 characters');
  return options.event !== undefined ? { kind: 'event', id } : { kind: 'entity', id };
}

/**
 * Checks every input without sending anything, reporting each file as a `planned` (or
 * `skipped`) event as it comes. Throws InputError at the end when inputs were invalid
 * (unless skipInvalid, which reports them as skipped).
 */
export async function plan(options: PlanOptions & { onEvent?: (event: PlanEvent) => void }): Promise<DryRunSummary> {
  const emit = options.onEvent ?? (() => {});
  const summary: DryRunSummary = { event: 'summary', dry_run: true, planned: 0, skipped: 0, invalid: 0, link_outside: 0, bytes: 0, ...shardField(options.shard) };
  const problems: Problem[] = [];
  for await (const item of checkedInputs(options).checked()) {
    if (item.kind !== 'file') {
      const event = eventOf(item);
      if (event.event === 'skipped') summary.skipped++;
      if (event.event === 'skipped' && event.reason === 'link_outside') summary.link_outside++;
      if (item.kind === 'problem') {
        problems.push(item.problem);
        summary.invalid++;
        if (!options.skipInvalid) continue; // refused together at the end
      }
      emit(event);
    } else {
      const f = item.file;
      summary.planned++;
      summary.bytes += f.bytes;
      emit({ event: 'planned', path: f.path, entity_id: f.entityId, media_type: f.mediaType ?? null, media_type_source: f.mediaTypeSource, bytes: f.bytes });
    }
  }
  if (problems.length > 0 && !options.skipInvalid) throw new InputError(problems);
  return summary;
}

/**
 * Checks every input, then uploads every valid file. Throws UsageError or InputError (nothing
 * sent) for bad options or inputs; otherwise resolves with the summary, also when files
 * failed or the run stopped early (`summary.stopped`). The key never appears in what it
 * reports or throws.
 */
export async function upload(options: UploadOptions): Promise<UploadSummary> {
  const apiRoot = resolveApiRoot(options);
  if (!options.org) throw new UsageError('--org is required', 'pass your Unit21 org name with --org or U21_ORG');
  if (options.org === '.' || options.org === '..') throw new UsageError(`--org: "${options.org}" is not an org name`, 'pass the org_name Unit21 gave you');
  if (!options.apiKey) throw new UsageError('no API key', 'set U21_API_KEY, or pass --api-key-file <file>');
  const batch = options.batch ?? DEFAULTS.batch;
  if (!(batch >= 1 && batch <= MAX_FILES_PER_REQUEST)) throw new UsageError(`--batch: ${batch} is out of range`, `use 1 to ${MAX_FILES_PER_REQUEST}`);
  refuseOverwrites(options);
  const redact = createRedactor(options.apiKey);
  // Held from before the check to the end: a second run on this journal is refused at once.
  const lock = options.journal ? await lockJournal(resolve(options.cwd ?? process.cwd(), options.journal)) : undefined;
  try {
    return await checkAndSend(options, apiRoot, redact);
  } catch (error) {
    throw redactError(error, redact);
  } finally {
    lock?.release();
  }
}

async function checkAndSend(options: UploadOptions, apiRoot: string, redact: Redact): Promise<UploadSummary> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const concurrency = options.concurrency ?? DEFAULTS.concurrency;
  const where = { host: apiRoot, org: options.org, config: options.configPath ?? null };
  const inputs = checkedInputs(options);
  let toSend = () => inputs.checked();
  if (options.skipInvalid) {
    // Files stream to the workers at once; the total for progress comes from a quick listing.
    if (options.onTotal) inputs.count().then(options.onTotal, () => {});
  } else {
    const checked = await checkFirst(inputs, options);
    if (!checked) {
      // Interrupted while checking: nothing was sent, nothing to resume.
      return { event: 'summary', total: 0, ...emptyTally(), duration_ms: clock.now() - started, stopped: 'interrupted', ...where };
    }
    toSend = checked;
  }

  const journal = options.journal ? await openFor('--journal', 'use', options.journal, Journal.open, 'give a path to a writable file; it is created if missing') : undefined;
  let sink: OutcomeSink | undefined;
  let report: ReportWriter | undefined;
  try {
    if (journal && journal.unusable.count > 0) options.onEvent?.({ event: 'warning', message: unusableLinesWarning(journal) });
    const header = { ...where, started: new Date(started).toISOString() };
    report = options.report ? await openFor('--report', 'write', options.report, (path) => ReportWriter.open(path, header, (error) => sink?.fail(error, path)), 'give a path to a writable .json or .csv file') : undefined;
    sink = new OutcomeSink({ ...(journal && { journal }), ...(report && { report }), ...(options.onEvent && { onEvent: options.onEvent }) });
  } catch (error) {
    journal?.close();
    throw error;
  }
  // Loaded only to send: a dry run, or a run refused at the check, never loads the HTTP client.
  const [{ transfer }, { createDispatcher }] = await Promise.all([import('./core/transfer/engine.js'), import('./core/transfer/client.js')]);
  const dispatcher = options.dispatcher ?? createDispatcher(concurrency);
  let tally;
  try {
    tally = await transfer(toSend(), {
      apiRoot,
      org: options.org,
      apiKey: options.apiKey,
      format: options.format ?? 'multipart',
      concurrency,
      rate: options.rate ?? DEFAULTS.rate,
      batch: options.batch ?? DEFAULTS.batch,
      retry: { ...DEFAULT_RETRY_POLICY, retries: options.retries ?? DEFAULTS.retries },
      timeoutMs: (options.timeout ?? DEFAULTS.timeout) * 1000,
      failFast: options.failFast ?? false,
      allowDuplicates: options.allowDuplicates ?? false,
      resendUnknown: options.resendUnknown ?? true,
      cwd: options.cwd ?? process.cwd(),
      objectType: options.event !== undefined ? 'events' : 'entities',
      dispatcher,
      ownDispatcher: options.dispatcher === undefined,
      clock,
      sink,
      redact,
      ...(journal && { journal }),
      ...(options.drain && { drain: options.drain }),
      ...(options.signal && { signal: options.signal }),
    });
  } finally {
    // Closed before the summary: the last flush and fsync may fail too, and the summary says so.
    await sink.close();
    if (!options.dispatcher) await dispatcher.close();
  }
  return {
    event: 'summary',
    total: tally.uploaded + tally.failed + tally.skipped,
    ...tally,
    duration_ms: clock.now() - started,
    ...shardField(options.shard),
    ...where,
    ...(sink.failure && { write_error: sink.failure }),
  };
}

/** A lock on a journal that is a file; a device such as /dev/null, written but never read, needs none. */
async function lockJournal(path: string): Promise<JournalLock | undefined> {
  const stats = await stat(path).catch(() => undefined);
  if (stats && !stats.isFile()) return undefined;
  return JournalLock.acquire(path);
}

/** The report must not be written over the manifest or the journal it reads. */
function refuseOverwrites(options: UploadOptions) {
  const cwd = options.cwd ?? process.cwd();
  const real = (path: string) => {
    const absolute = resolve(cwd, path);
    try {
      return realpathSync(absolute);
    } catch {
      return absolute;
    }
  };
  const named = [['--manifest', options.manifest], ['--journal', options.journal], ['--report', options.report]].filter((entry): entry is [string, string] => entry[1] !== undefined);
  for (const [i, [flag, path]] of named.entries()) {
    for (const [otherFlag, otherPath] of named.slice(i + 1)) {
      if (real(path) === real(otherPath)) throw new UsageError(`${otherFlag}: ${otherPath} is also the ${flag} file; it would be written over`, `give ${otherFlag} a file of its own`);
    }
  }
}

function unusableLinesWarning(journal: Journal): string {
  const { count, lines } = journal.unusable;
  const named = `line${lines.length === 1 ? '' : 's'} ${lines.join(', ')}${count > lines.length ? ` and ${count - lines.length} more` : ''}`;
  return `${journal.path}: ${count === 1 ? 'one line is' : `${count} lines are`} not a journal record (${named}), skipped; a line cut short by a crash looks like this`;
}

/** An error on its way out, with the key taken out of its message and stack. */
function redactError(error: unknown, redact: Redact): unknown {
  if (error instanceof Error) {
    error.message = redact(error.message);
    if (error.stack) error.stack = redact(error.stack);
  }
  return error;
}

/** Checked inputs kept from the first pass, up to this many; beyond, only their sizes. */
const KEPT_AT_MOST = 20_000;

/**
 * Checks every input before the first byte is sent, and returns what to send: exactly what
 * was checked. A run of up to KEPT_AT_MOST keeps its checked files; a larger one keeps only
 * their sizes (16 bytes a file) and lists its files again as it sends, dropping any the check
 * did not see. A file whose size changed since fails when read (file_changed) instead of
 * being sent cut short. Throws InputError for invalid inputs; undefined when interrupted.
 */
async function checkFirst(inputs: CheckedInputs, options: UploadOptions): Promise<(() => AsyncGenerator<Checked>) | undefined> {
  const problems: Problem[] = [];
  let total = 0;
  let kept: Checked[] | undefined = [];
  // Every checked size is noted, to fall back on once there are too many files to keep.
  const sizes = new CheckedSizes();
  const warnings: Array<Extract<Checked, { kind: 'warning' }>> = [];
  for await (const item of inputs.checked()) {
    if (options.drain?.aborted || options.signal?.aborted) return undefined;
    if (item.kind === 'warning') {
      warnings.push(item);
      continue;
    }
    if (item.kind === 'file') sizes.add(item.file.absPath, item.file.bytes);
    if (item.kind === 'problem') problems.push(item.problem);
    if (kept?.length === KEPT_AT_MOST) kept = undefined;
    kept?.push(item);
    total++;
  }
  if (problems.length > 0) throw new InputError(problems);
  // Said once the inputs are accepted, before anything is sent, rather than among the outcomes.
  for (const warning of warnings) options.onEvent?.(eventOf(warning));
  options.onTotal?.(total);
  const given = new Set(warnings.map((w) => w.message));
  return kept ? () => replay(kept) : () => withoutRepeats(inputs.checked(sizes.seal()), given);
}

/** The kept items, each let go once handed on. */
async function* replay<T>(items: Array<T | undefined>): AsyncGenerator<T> {
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    items[i] = undefined;
    yield item;
  }
}

/** The second look at a large run's inputs, without the warnings given after the first (a sidecar edited since may still bring a new one). */
async function* withoutRepeats(items: AsyncIterable<Checked>, given: ReadonlySet<string>): AsyncGenerator<Checked> {
  for await (const item of items) if (item.kind !== 'warning' || !given.has(item.message)) yield item;
}

const shardField = (shard: Shard | undefined) => (shard ? { shard: `${shard.k}/${shard.n}` } : {});

/** Opens the journal or the report, naming the flag and the path when that fails. */
async function openFor<T>(flag: string, verb: string, path: string, open: (path: string) => Promise<T>, hint: string): Promise<T> {
  try {
    return await open(path);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${flag}: cannot ${verb} ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, hint);
  }
}
