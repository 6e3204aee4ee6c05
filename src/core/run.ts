import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { UploadOptions } from './api-options.js';
import { systemClock } from './shared/clock.js';
import { UsageError } from './shared/errors.js';
import { emptyTally, type UploadSummary } from './outcomes/events.js';
import { MAX_FILES_PER_REQUEST } from './files/file-types.js';
import { isLoopback, resolveTarget } from './connection/hosts.js';
import {
  checkedInputs,
  checkFirst,
  inputSettingsOf,
  mayReadObjects,
  targetOf,
  type CheckedInputs,
  type InputSettings,
} from './check.js';
import { Fixer } from './convert/fixer.js';
import { Journal, unusableLinesWarning } from './journal/journal.js';
import { JournalLock, type JournalLockSettings } from './journal/lock.js';
import type { HeldLock } from './disk/held-lock.js';
import { readerThreadCount } from './body/reader-count.js';
import { concurrencyWithin } from './files/descriptors.js';
import { DEFAULTS } from './options.js';
import { OutcomeSink } from './outcomes/outcome-sink.js';
import { checkProxyUrl, proxySecrets, shownProxy } from './connection/proxy.js';
import { createRedactor, type Redact } from './shared/redact.js';
import { ReportWriter, type ReportHeader } from './outcomes/report.js';
import { Scratch } from './disk/scratch.js';
import { shardField } from './inputs/shard.js';
import { DEFAULT_RETRY_POLICY } from './transfer/retry-policy.js';
import { readVersion } from './shared/version.js';

/** upload()'s run: the checks, the journal's lock, the check-first pass, then the transfer. */
export async function uploadFiles(options: UploadOptions): Promise<UploadSummary> {
  const { apiRoot } = resolveTarget(targetOf(options));
  if (!options.apiKey) throw new UsageError('no API key', 'set U21_API_KEY, or pass --api-key-file <file>');
  const batch = options.batch ?? DEFAULTS.batch;
  if (!(batch >= 1 && batch <= MAX_FILES_PER_REQUEST))
    throw new UsageError(`--batch: ${batch} is out of range`, `use 1 to ${MAX_FILES_PER_REQUEST}`);
  const cwd = options.cwd ?? process.cwd();
  refuseOverwrites(cwd, [
    ['--manifest', options.manifest],
    ['--retry-failed', options.retryFailed],
    ['--journal', options.journal],
    ['--report', options.report],
  ]);
  const readerThreads = readerThreadCount(options.readerThreads);
  // A loopback API (the sandbox) is never reached through a proxy.
  const proxy =
    options.proxy !== undefined && !isLoopback(new URL(apiRoot)) ? checkProxyUrl(options.proxy, '--proxy') : undefined;
  const redact = createRedactor(options.apiKey, ...(proxy ? proxySecrets(proxy) : []));
  const journalPath = options.journal ? resolve(cwd, options.journal) : undefined;
  const stops = [options.drain, options.signal].filter((s): s is AbortSignal => s !== undefined);
  // Held from before the check to the end: a second run on this journal is refused at once.
  const lock = journalPath
    ? await lockJournal(journalPath, {
        onWait: (message) => options.onEvent?.({ event: 'warning', message }),
        ...(stops.length > 0 && { signal: AbortSignal.any(stops) }),
      })
    : undefined;
  let scratch: Scratch | undefined;
  let inputs: CheckedInputs | undefined;
  try {
    const inputSettings = await inputSettingsOf(options);
    inputs = checkedInputs(inputSettings);
    scratch = await Scratch.create();
    return await checkAndSend(
      options,
      { apiRoot, proxy, scratch, lock, inputs, check: inputSettings.check, cwd, journalPath, batch },
      redact,
      readerThreads,
    );
  } catch (error) {
    throw redactError(error, redact);
  } finally {
    await inputs?.close();
    await scratch?.remove();
    await lock?.release();
  }
}

/** The run's parts made so far, and the options uploadFiles has already resolved. */
interface RunSoFar {
  apiRoot: string;
  proxy: URL | undefined;
  scratch: Scratch;
  lock: HeldLock | undefined;
  inputs: CheckedInputs;
  /** How the inputs were checked: the body format, the size limit, what may change. */
  check: InputSettings['check'];
  cwd: string;
  journalPath: string | undefined;
  batch: number;
}

async function checkAndSend(
  options: UploadOptions,
  run: RunSoFar,
  redact: Redact,
  readerThreads: number,
): Promise<UploadSummary> {
  const { apiRoot, proxy, scratch, lock, inputs, check, cwd } = run;
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const where = {
    run_id: runIdAt(started),
    host: apiRoot,
    org: options.org,
    proxy: proxy ? shownProxy(proxy) : null,
    config: options.configPath ?? null,
  };
  const journalPath = run.journalPath ?? null;
  // Only a run that may change files makes copies, and its report has the columns that say so.
  const mayChange = check.convert || check.fit || check.stripLocation;
  let toSend = () => inputs.checked();
  if (options.skipInvalid) {
    // Files stream to the workers at once; the total for progress comes from a quick listing.
    if (options.onTotal) inputs.count().then(options.onTotal, () => {});
  } else {
    const checked = await checkFirst(inputs, {
      scratch,
      drain: options.drain,
      signal: options.signal,
      onEvent: options.onEvent,
      onTotal: options.onTotal,
      onCheck: options.onCheck,
    });
    if (!checked) {
      // Interrupted while checking: nothing was sent, nothing to resume.
      return {
        event: 'summary',
        total: 0,
        ...emptyTally(),
        duration_ms: clock.now() - started,
        stopped: 'interrupted',
        ...where,
        journal: journalPath !== null && existsSync(journalPath) ? journalPath : null,
      };
    }
    toSend = checked;
  }

  const journal =
    journalPath !== null
      ? await openFor(
          '--journal',
          'use',
          journalPath,
          (path) =>
            Journal.open(path, { host: apiRoot, adoptOldRecords: options.adoptOldRecords ?? DEFAULTS.adoptOldRecords }),
          'give a path to a writable file; it is created if missing',
        )
      : undefined;
  let sink: OutcomeSink | undefined;
  let report: ReportWriter | undefined;
  try {
    if (journal && journal.unusable.count > 0)
      options.onEvent?.({ event: 'warning', message: unusableLinesWarning(journal) });
    if (journal?.adopted)
      options.onEvent?.({
        event: 'warning',
        message: `${journal.path}: ${journal.adopted === 1 ? 'one record' : `${journal.adopted} records`} from before records named their API host now ${journal.adopted === 1 ? 'names' : 'name'} ${apiRoot}, where this run sends`,
      });
    const header: ReportHeader = {
      tool: 'u21-media',
      tool_version: readVersion(),
      ...where,
      command: options.commandLine === undefined ? null : redact(options.commandLine),
      started: new Date(started).toISOString(),
    };
    const now = () => clock.now();
    report = options.report
      ? await openFor(
          '--report',
          'write',
          resolve(cwd, options.report),
          (path) =>
            ReportWriter.open(path, header, (error) => sink?.fail(error, path), now, {
              change: mayChange,
              readObjects: mayReadObjects(options),
            }),
          'give a path to a writable .json or .csv file',
        )
      : undefined;
    sink = new OutcomeSink({
      ...(journal && { journal }),
      ...(report && { report }),
      ...(options.onEvent && { onEvent: options.onEvent }),
    });
    // The report's first lines can fail before the sink exists to hear of it.
    if (report?.error) sink.fail(report.error, report.error.path ?? resolve(cwd, options.report!));
    // Another run took over a lock this run holds (it was paused past the lock's renewal): it stops as when the journal cannot be written.
    const held = sink;
    lock?.whenLost((error) => held.fail(error, lock.path));
    scratch.whenLost((error) => held.fail(error, scratch.dir));
  } catch (error) {
    journal?.close();
    throw error;
  }
  // Loaded only to send: a dry run, or a run refused at the check, never loads the HTTP client.
  const [{ transfer }, { undiciTransport }, { ReaderThreads }] = await Promise.all([
    import('./transfer/engine.js'),
    import('./transfer/transport.js'),
    import('./body/reader-threads.js'),
  ]);
  // The run's own parts, closed when it ends: two runs in one process share nothing.
  const asked = options.concurrency ?? DEFAULTS.concurrency;
  const { concurrency, limit } = concurrencyWithin(asked, readerThreads);
  if (concurrency < asked)
    sink.event({
      event: 'warning',
      message: `the limit on open files (ulimit -n ${limit}) leaves room for ${concurrency} request${concurrency === 1 ? '' : 's'} at once: --concurrency ${asked} is lowered to ${concurrency}; raise the limit (ulimit -n 4096) to send more at once`,
    });
  const timeoutMs = (options.timeout ?? DEFAULTS.timeout) * 1000;
  const transport = undiciTransport({
    apiKey: options.apiKey,
    redact,
    concurrency,
    timeoutMs,
    clock,
    ...(proxy && { proxy }),
    ...(options.dispatcher && { dispatcher: options.dispatcher }),
  });
  const reader = new ReaderThreads(readerThreads);
  // Only a run that may change files makes a folder for the copies (and, on first use, loads sharp).
  const fixer = mayChange ? Fixer.create(check.maxFileSize, scratch.folder('sent')) : undefined;
  let tally;
  try {
    tally = await transfer(
      toSend(),
      {
        apiRoot,
        org: options.org,
        runId: where.run_id,
        format: check.format,
        concurrency,
        rate: options.rate ?? DEFAULTS.rate,
        batch: run.batch,
        retry: { ...DEFAULT_RETRY_POLICY, retries: options.retries ?? DEFAULTS.retries },
        timeoutMs,
        failFast: options.failFast ?? DEFAULTS.failFast,
        allowDuplicates: options.allowDuplicates ?? DEFAULTS.allowDuplicates,
        resendUnknown: options.resendUnknown ?? DEFAULTS.resendUnknown,
        cwd,
        redact,
        ...(journal && { journal }),
        ...(options.drain && { drain: options.drain }),
        ...(options.signal && { signal: options.signal }),
      },
      { transport, reader, clock, sink, scratch, ...(fixer && { fixer }) },
    );
  } finally {
    // Closed before the summary: the last flush and fsync may fail too, and the summary says so.
    await sink.close(tally && { total: tally.uploaded + tally.failed + tally.skipped, ...tally });
    await Promise.all([transport.close(), reader.close(), fixer?.close()]);
  }
  // A journal this run made, of files none of which was stored, is not left behind (the run's lock still held).
  // Not after a failed write or a lost lock: what the journal holds is then not this run's to judge.
  const journalKept = !sink.failure && journal?.removeIfUnneeded() ? null : journalPath;
  return {
    event: 'summary',
    total: tally.uploaded + tally.failed + tally.skipped,
    ...tally,
    duration_ms: clock.now() - started,
    ...shardField(options.shard),
    ...where,
    journal: journalKept,
    ...(sink.failure && { write_error: sink.failure }),
  };
}

/** A run's id: when it started, to the second, and a random tail (`20261206T034512Z-9f3a1c`), sortable and unique enough to name it. */
const runIdAt = (ms: number) =>
  `${new Date(ms).toISOString().replace(/[-:]|\.\d+/g, '')}-${randomBytes(3).toString('hex')}`;

/** A lock on a journal that is a file; a device such as /dev/null, written but never read, needs none. */
async function lockJournal(path: string, settings: JournalLockSettings): Promise<HeldLock | undefined> {
  const stats = await stat(path).catch(() => undefined);
  if (stats && !stats.isFile()) return undefined;
  return JournalLock.acquire(path, settings);
}

/** The report must not be written over the manifest or the journal it reads. */
function refuseOverwrites(cwd: string, files: Array<[flag: string, path: string | false | undefined]>) {
  const real = (path: string) => {
    const absolute = resolve(cwd, path);
    try {
      return realpathSync(absolute);
    } catch {
      return absolute;
    }
  };
  const named = files.filter((entry): entry is [string, string] => typeof entry[1] === 'string');
  for (const [i, [flag, path]] of named.entries()) {
    for (const [otherFlag, otherPath] of named.slice(i + 1)) {
      if (real(path) === real(otherPath))
        throw new UsageError(
          `${otherFlag}: ${otherPath} is also the ${flag} file; it would be written over`,
          `give ${otherFlag} a file of its own`,
        );
    }
  }
}

/** An error on its way out, with the key taken out of its message and stack. */
function redactError(error: unknown, redact: Redact): unknown {
  if (error instanceof Error) {
    error.message = redact(error.message);
    if (error.stack) error.stack = redact(error.stack);
  }
  return error;
}

/** Opens the journal or the report, naming the flag and the path when that fails. */
async function openFor<T>(
  flag: string,
  verb: string,
  path: string,
  open: (path: string) => Promise<T>,
  hint: string,
): Promise<T> {
  try {
    return await open(path);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `${flag}: cannot ${verb} ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      hint,
    );
  }
}
