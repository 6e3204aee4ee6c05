import type { PlanOptions } from './api-options.js';
import type { DiskTable } from './disk/disk-table.js';
import { discover } from './inputs/discover.js';
import { InputError, UsageError, type Problem } from './shared/errors.js';
import { basename, resolve } from 'node:path';
import {
  emptyDryRun,
  eventOf,
  type CheckProgress,
  type DryRunSummary,
  type PlanEvent,
  type PlannedEvent,
  type SkippedEvent,
  type UploadEvent,
  type WarningEvent,
} from './outcomes/events.js';
import { readManifest, type Destination } from './inputs/manifest.js';
import { compileRules } from './inputs/media-type.js';
import { DEFAULTS } from './options.js';
import { known, target, type Checked, type PlannedFile } from './inputs/plan.js';
import { preflight, type PreflightSettings } from './inputs/preflight.js';
import { idProblem, OBJECT_OF, type EntitySource } from './inputs/route.js';
import { resolveTarget, type TargetSettings } from './connection/hosts.js';
import { identityNumber } from './files/file-identity.js';
import { shardField } from './inputs/shard.js';
import { textProblem } from './shared/well-formed.js';
import { Journal, unusableLinesWarning } from './journal/journal.js';
import { inUseWarning } from './journal/lock.js';
import { RepeatFilter, unknownOutcomeMessage } from './transfer/dedupe.js';
import { Scratch } from './disk/scratch.js';
import { readerThreadCount } from './body/reader-count.js';
import { checkedS3Endpoint, isS3Url } from './s3/url.js';
import type { ObjectStore, ObjectStoreSettings } from './s3/store.js';

/** The checked inputs as a stream, lazily: a 300,000-file folder is never held whole; and a cheap count of them. */
export interface CheckedInputs {
  checked: (look?: Pick<PreflightSettings, 'checkedFiles' | 'onChecked'>) => AsyncGenerator<Checked>;
  /** Stops listing, early, once `signal` is aborted. */
  count: (signal?: AbortSignal) => Promise<number>;
  /** Lets go of the connections to the object store, if one was opened. */
  close: () => Promise<void>;
}

/** What the inputs stage takes: the inputs, where their paths start, how each is checked, where the object store is. */
export interface InputSettings {
  cwd: string;
  paths: readonly string[];
  /** How each input is checked: its entity source, media type, size, what may change. */
  check: Omit<PreflightSettings, 'checkedFiles' | 'onChecked' | 'objectStore'>;
  /** Where this run sends, for a report given back (--retry-failed) to be checked against. */
  destination?: Destination;
  objectStore: ObjectStoreSettings;
}

/**
 * The inputs stage's settings from the options, defaults applied; refuses a bad entity source,
 * media type, convention or --s3-endpoint. `timeout`, an upload's, also bounds the reads from a
 * bucket (a dry run's take the default).
 */
export async function inputSettingsOf(options: PlanOptions & { timeout?: number }): Promise<InputSettings> {
  const entity = checkedTarget(options);
  const mediaTypeProblem = options.mediaType === undefined ? undefined : textProblem(options.mediaType, '--media-type');
  if (mediaTypeProblem)
    throw new UsageError(mediaTypeProblem, 'give a media_type such as IMAGE_PASSPORT_FRONT (see u21-media types)');
  let rules;
  try {
    rules = await compileRules(options.conventions ?? []);
  } catch (error) {
    throw new UsageError((error as Error).message, 'fix the conventions in your config file');
  }
  const check = {
    entity,
    infer: options.infer ?? DEFAULTS.infer,
    rules,
    maxFileSize: options.maxFileSize ?? DEFAULTS.maxFileSize,
    sniff: options.sniff ?? DEFAULTS.sniff,
    format: options.format ?? DEFAULTS.format,
    convert: options.convert ?? DEFAULTS.convert,
    fit: options.fit ?? DEFAULTS.fit,
    stripLocation: options.stripLocation ?? DEFAULTS.stripLocation,
    followLinks: options.followLinks ?? DEFAULTS.followLinks,
    ...(options.mediaType !== undefined && { mediaType: options.mediaType }),
    ...(options.shard && { shard: options.shard }),
  };
  // A report given back is sent where its run sent it, unless the user says otherwise.
  const destination =
    entity.kind === 'manifest' &&
    entity.retryFailed &&
    !(options.retryElsewhere ?? DEFAULTS.retryElsewhere) &&
    options.org !== undefined &&
    (options.env !== undefined || options.baseUrl !== undefined)
      ? resolveTarget(targetOf(options))
      : undefined;
  // Checked only when objects may be read: AWS_ENDPOINT_URL_S3 set for other tools must not stop a run of local files.
  const objectStore = {
    ...(options.s3Endpoint && mayReadObjects(options) && { endpoint: checkedS3Endpoint(options.s3Endpoint) }),
    ...(options.s3Proxy && { proxyFor: options.s3Proxy }),
    timeoutMs: (options.timeout ?? DEFAULTS.timeout) * 1000,
  };
  return {
    cwd: options.cwd ?? process.cwd(),
    paths: options.paths ?? [],
    check,
    ...(destination && { destination: { host: destination.apiRoot, org: destination.org } }),
    objectStore,
  };
}

/** The inputs, found (listed, or read from a manifest) and checked as they are asked for. */
export function checkedInputs(settings: InputSettings): CheckedInputs {
  const { cwd, paths, check, destination } = settings;
  const { entity } = check;
  // Opened (and the AWS SDK loaded) only once an argument or a manifest row names an object.
  const { open: objectStore, close } = oneObjectStore(settings.objectStore);
  const found = () =>
    entity.kind === 'manifest'
      ? readManifest(entity.path, cwd, {
          retryFailed: entity.retryFailed ?? false,
          ...(destination && { destination }),
        })
      : discover(paths, cwd, { followLinks: check.followLinks, objectStore });
  return {
    checked: (look = {}) => preflight(found(), { ...check, objectStore, ...look }),
    // Listing without checking: no stat, no sidecar read.
    count: async (signal) => {
      let n = 0;
      for await (const _ of found()) {
        if (signal?.aborted) break;
        n++;
      }
      return n;
    },
    close,
  };
}

/** Where the options say a run sends (checked by resolveTarget). */
export const targetOf = (options: PlanOptions): TargetSettings => ({
  org: options.org,
  env: options.env,
  baseUrl: options.baseUrl,
});

/** Whether a run may read objects: an argument names some, or a manifest (or a report given back) lists files, whose rows may. */
export const mayReadObjects = (options: PlanOptions): boolean =>
  (options.paths ?? []).some(isS3Url) || options.manifest !== undefined || options.retryFailed !== undefined;

/** The run's S3 client, made on first use and then the same for every listing and read; closed with the run. */
function oneObjectStore(settings: ObjectStoreSettings): {
  open: () => Promise<ObjectStore>;
  close: () => Promise<void>;
} {
  let store: Promise<ObjectStore> | undefined;
  return {
    open: () => (store ??= import('./s3/store.js').then(({ openObjectStore }) => openObjectStore(settings))),
    close: async () => (await store?.catch(() => undefined))?.close(),
  };
}

/** Where the files go and which files: exactly one entity source, and paths unless a manifest lists them. */
export function checkedTarget(options: PlanOptions): EntitySource {
  const paths = options.paths ?? [];
  if (options.retryElsewhere && options.retryFailed === undefined)
    throw new UsageError(
      '--retry-elsewhere goes with --retry-failed',
      'it lets a report from another host or org be sent to this one; drop it, or add --retry-failed <report>',
    );
  if (options.retryFailed !== undefined) {
    // The report names the files and where each went (entity, event, alert or case): nothing else may.
    const also = [
      options.manifest !== undefined && '--manifest',
      ...singleTargets(options).map(([flag]) => flag),
      options.entityFrom !== undefined && '--entity-from',
      paths.length > 0 && 'path arguments',
    ].filter(Boolean);
    if (also.length > 0)
      throw new UsageError(
        `--retry-failed cannot be combined with ${also.join(', ')}`,
        'the report names the files and their entities; give --retry-failed <report> alone',
      );
    return { kind: 'manifest', path: options.retryFailed, retryFailed: true };
  }
  const entity = entitySourceOf(options);
  if (entity.kind === 'manifest' && paths.length > 0) {
    throw new UsageError(
      'path arguments and --manifest both name files',
      'list every file in the manifest, or drop --manifest',
    );
  }
  if (entity.kind !== 'manifest' && paths.length === 0)
    throw new UsageError('no files given', 'name files, folders or quoted glob patterns to upload');
  return entity;
}

/** Exactly one of entity, entityFrom and manifest decides where files go. */
function entitySourceOf(options: PlanOptions): EntitySource {
  const single = singleTargets(options);
  const given = [
    ...single.map(([flag]) => flag),
    options.entityFrom !== undefined && '--entity-from',
    options.manifest !== undefined && '--manifest',
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0 ? 'no entity given' : `${given.join(' and ')} both decide the entity`,
      'use exactly one of --entity <id>, --entity-from dir|prefix, --manifest <file>, --event <id>, --alert <id>, --case <id>',
    );
  }
  if (options.manifest !== undefined) return { kind: 'manifest', path: options.manifest };
  if (options.entityFrom !== undefined) {
    if (options.entityFrom !== 'dir' && options.entityFrom !== 'prefix')
      throw new UsageError(`--entity-from: "${String(options.entityFrom)}" is not a valid value`, 'use dir or prefix');
    return { kind: options.entityFrom };
  }
  const [flag, kind, id] = single[0]!;
  const problem = idProblem(id, OBJECT_OF[kind], `${kind} id`);
  const fix =
    kind === 'alert' || kind === 'case'
      ? `give the ${kind}'s unit21_id, the number Unit21 shows for it`
      : 'give the id your system uses for it, 1 to 128 characters';
  if (problem) throw new UsageError(`${flag}: ${problem}`, fix);
  return { kind, id };
}

type SingleKind = 'entity' | 'event' | 'alert' | 'case';

/** The options that send every file to one object, as given: [flag, kind, id]. */
function singleTargets(options: PlanOptions): Array<[string, SingleKind, string]> {
  const given: Array<[string, SingleKind, string | undefined]> = [
    ['--entity', 'entity', options.entity],
    ['--event', 'event', options.event],
    ['--alert', 'alert', options.alert],
    ['--case', 'case', options.case],
  ];
  return given.filter((target): target is [string, SingleKind, string] => target[2] !== undefined);
}

/**
 * plan()'s pass: every input checked, each reported as it comes; nothing sent. What the real
 * run would skip is said skipped, for the same reasons: what the journal records as uploaded,
 * a repeat of content already sent to the same entity, what an earlier run left unknown
 * (with resendUnknown off). The journal is read, not locked or written (Journal.openToRead).
 */
export async function planFiles(
  options: PlanOptions & { onEvent?: (event: PlanEvent) => void },
): Promise<DryRunSummary> {
  const emit = options.onEvent ?? (() => {});
  const summary: DryRunSummary = { ...emptyDryRun(), ...shardField(options.shard) };
  const problems: Problem[] = [];
  const skipInvalid = options.skipInvalid ?? DEFAULTS.skipInvalid;
  const resendUnknown = options.resendUnknown ?? DEFAULTS.resendUnknown;
  const inputs = checkedInputs(await inputSettingsOf(options));
  const skip = (event: SkippedEvent) => {
    summary.skipped++;
    if (event.reason === 'link_outside') summary.link_outside++;
    if (event.reason === 'unknown_outcome') summary.unknown_outcome++;
    emit(event);
  };
  const cwd = options.cwd ?? process.cwd();
  const repeatSettings = {
    cwd,
    target: targetOf(options),
    adoptOldRecords: options.adoptOldRecords ?? DEFAULTS.adoptOldRecords,
    allowDuplicates: options.allowDuplicates ?? DEFAULTS.allowDuplicates,
    ...(options.journal && { journal: options.journal }),
  };
  await withRepeatFilter(repeatSettings, emit, inputs, async (repeats) => {
    for await (const item of inputs.checked()) {
      if (item.kind === 'problem') {
        problems.push(item.problem);
        summary.invalid++;
        // Refused together at the end, unless skipped.
        if (skipInvalid) skip(eventOf(item) as SkippedEvent);
        continue;
      }
      if (item.kind !== 'file') {
        const event = eventOf(item);
        if (event.event === 'skipped') skip(event);
        else emit(event);
        continue;
      }
      const f = item.file;
      const verdict = await repeats.check(f);
      if ('unreadable' in verdict) {
        // The real run fails it, and ends with exit 1: so does the plan.
        summary.unreadable++;
        emit({
          event: 'warning',
          path: f.path,
          message: `cannot be read (${verdict.unreadable.code ?? verdict.unreadable.message}); the run would fail it`,
        });
        continue;
      }
      if (verdict.skip) {
        skip({
          event: 'skipped',
          path: f.path,
          reason: verdict.skip,
          message: verdict.message,
          ...known(f),
          sha256: verdict.sha256,
        });
        continue;
      }
      if ('unknownOutcome' in verdict && !resendUnknown) {
        skip({
          event: 'skipped',
          path: f.path,
          reason: 'unknown_outcome',
          message: unknownOutcomeMessage(resolve(cwd, String(options.journal))),
          ...known(f),
          sha256: verdict.sha256,
        });
        continue;
      }
      summary.planned++;
      summary.bytes += f.bytes;
      const sentBefore = 'unknownOutcome' in verdict && { possibly_duplicated: true as const };
      emit({
        event: 'planned',
        path: f.path,
        ...target(f),
        media_type: f.mediaType ?? null,
        media_type_source: f.mediaTypeSource,
        bytes: f.bytes,
        detected: f.detected ?? null,
        ...plannedFix(f),
        ...sentBefore,
      });
    }
  });
  if (problems.length > 0 && !skipInvalid) throw new InputError(problems, summary.planned);
  return summary;
}

/** What the plan's duplicate check takes: the journal the real run would use, where it would send, and whether repeats are sent anyway. */
interface PlanRepeatSettings {
  cwd: string;
  journal?: string;
  target: TargetSettings;
  adoptOldRecords: boolean;
  allowDuplicates: boolean;
}

/**
 * Runs `use` with the duplicate check the real run would make: against the journal it would
 * use (read only, indexed in a folder of the dry run's own) and the files before each.
 */
async function withRepeatFilter(
  settings: PlanRepeatSettings,
  emit: (event: WarningEvent) => void,
  inputs: CheckedInputs,
  use: (repeats: RepeatFilter) => Promise<void>,
): Promise<void> {
  const { cwd, target } = settings;
  // Where the journal's records must have gone to count: the real run's host and org.
  const destination = settings.journal ? resolveTarget(target) : undefined;
  const scratch = await Scratch.create();
  const { ReaderThreads } = await import('./body/reader-threads.js');
  const reader = new ReaderThreads(readerThreadCount(undefined));
  let journal: Journal | undefined;
  try {
    if (settings.journal && destination) {
      const path = resolve(cwd, settings.journal);
      journal = await Journal.openToRead(
        path,
        { host: destination.apiRoot, adoptOldRecords: settings.adoptOldRecords },
        scratch.folder('journal-index'),
      ).catch((error: unknown) => {
        if (error instanceof UsageError) throw error;
        throw new UsageError(
          `--journal: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
          'give a path to a readable journal, or --no-journal',
        );
      });
      // Said as the real run says them: lines it cannot use, and (for the plan alone) a run sending on it now.
      const warnings = [
        journal && journal.unusable.count > 0 ? unusableLinesWarning(journal) : undefined,
        journal && (await inUseWarning(path)),
      ];
      for (const message of warnings) if (message) emit({ event: 'warning', message });
    }
    const repeats = new RepeatFilter({
      host: destination?.apiRoot ?? '',
      org: destination?.org ?? target.org ?? '',
      cwd,
      allowDuplicates: settings.allowDuplicates,
      scratch,
      reader,
      ...(journal && { journal }),
    });
    await use(repeats);
  } finally {
    journal?.closeIndex();
    await Promise.all([reader.close(), inputs.close()]);
    await scratch.remove();
  }
}

/** A planned change, as the dry run shows it: what will be done, and the name it will be sent under. */
function plannedFix(file: PlannedFile): Pick<PlannedEvent, 'fix' | 'sent_name'> {
  if (!file.fix) return {};
  const fix = (['convert', 'fit', 'strip_location'] as const).filter(
    (what) => file.fix![what === 'strip_location' ? 'stripLocation' : what],
  );
  return { fix, ...(file.name !== basename(file.absPath) && { sent_name: file.name }) };
}

/** What the check-first pass takes: when to stop, whom to tell, where to keep what it checked. */
interface CheckFirstSettings {
  drain?: AbortSignal;
  signal?: AbortSignal;
  onEvent?: (event: UploadEvent) => void;
  onTotal?: (files: number) => void;
  onCheck?: (progress: CheckProgress) => void;
  /** Where a large run's checked files are kept. */
  scratch: Scratch;
}

/** Checked inputs kept from the first pass, up to this many; beyond, only what the check saw of each file. */
const KEPT_AT_MOST = 20_000;

/**
 * Checks every input before the first byte is sent, and returns what to send: exactly what
 * was checked. A run of up to KEPT_AT_MOST keeps its checked files; a larger one keeps only
 * what the check saw of each (its identity as a number, on disk), and lists its files again as
 * it sends, dropping any the check did not see. A file that changed since fails when read
 * (file_changed) instead of being sent. Throws InputError for invalid inputs; undefined when interrupted.
 */
export async function checkFirst(
  inputs: CheckedInputs,
  settings: CheckFirstSettings,
): Promise<(() => AsyncGenerator<Checked>) | undefined> {
  const listing = new AbortController();
  try {
    return await checkAll(
      inputs,
      settings,
      settings.onCheck && checkProgress(inputs, settings.onCheck, listing.signal),
    );
  } finally {
    listing.abort();
  }
}

/**
 * Tells `onCheck` of each input checked and, once a listing of its own has counted them, of all
 * the inputs: listing costs little beside checking (no stat, no read), so it ends long before.
 * The last call of a whole check gives the total, counted or not.
 */
function checkProgress(inputs: CheckedInputs, onCheck: (progress: CheckProgress) => void, signal: AbortSignal) {
  let checked = 0;
  let total: number | undefined;
  inputs.count(signal).then(
    (n) => {
      if (signal.aborted) return;
      total = n;
      onCheck({ checked, total });
    },
    () => {}, // the check itself says what is wrong with the inputs
  );
  return {
    onChecked: () => onCheck({ checked: ++checked, total }),
    whole: () => total === undefined && onCheck({ checked, total: checked }),
  };
}

async function checkAll(
  inputs: CheckedInputs,
  settings: CheckFirstSettings,
  progress: ReturnType<typeof checkProgress> | undefined,
): Promise<(() => AsyncGenerator<Checked>) | undefined> {
  const problems: Problem[] = [];
  let total = 0;
  let files = 0;
  let kept: Checked[] | undefined = [];
  /** What the check saw of every file, once there are too many files to keep. */
  let seen: DiskTable | undefined;
  const warnings: Array<Extract<Checked, { kind: 'warning' }>> = [];
  for await (const item of inputs.checked(progress && { onChecked: progress.onChecked })) {
    if (settings.drain?.aborted || settings.signal?.aborted) return undefined;
    if (item.kind === 'warning') {
      warnings.push(item);
      continue;
    }
    if (kept?.length === KEPT_AT_MOST) {
      seen = settings.scratch.table();
      for (const earlier of kept)
        if (earlier.kind === 'file') seen.set(earlier.file.absPath, identityNumber(earlier.file.identity!));
      kept = undefined;
    }
    if (item.kind === 'file') {
      seen?.set(item.file.absPath, identityNumber(item.file.identity!));
      files++;
    }
    if (item.kind === 'problem') problems.push(item.problem);
    kept?.push(item);
    total++;
  }
  progress?.whole();
  if (problems.length > 0) throw new InputError(problems, files);
  // Said once the inputs are accepted, before anything is sent, rather than among the outcomes.
  for (const warning of warnings) settings.onEvent?.(eventOf(warning));
  settings.onTotal?.(total);
  const given = new Set(warnings.map(warningKey));
  const large = seen;
  return large ? () => withoutRepeats(inputs.checked({ checkedFiles: large }), given) : () => replay(kept ?? []);
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
  for await (const item of items) if (item.kind !== 'warning' || !given.has(warningKey(item))) yield item;
}

const warningKey = (warning: Extract<Checked, { kind: 'warning' }>) =>
  JSON.stringify([warning.message, warning.at?.path, warning.at?.line]);
