import { subscribe } from 'node:diagnostics_channel';
import { setMaxListeners } from 'node:events';
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';
import { fitsWhole, type RequestBody } from '../body/request-body.js';
import { entityMediaUrl } from '../hosts.js';
import type { Journal, OutcomeRecord, SendingRecord } from '../journal.js';
import type { OutcomeSink } from '../outcome-sink.js';
import type { Redact } from '../redact.js';
import { emptyTally, eventOf, type SkippedEvent, type StopReason, type UploadSummary, type WarningEvent } from '../events.js';
import type { Checked, PlannedFile } from '../plan.js';
import { batches } from './batches.js';
import { readAhead } from './read-ahead.js';
import { put } from './client.js';
import { RepeatFilter } from './dedupe.js';
import { FlowControl } from './flow-control.js';
import { retryDelayMs, serverWait, shouldRetry, type AttemptOutcome, type RetryPolicy, type ServerWait } from './retry-policy.js';
import { Scheduler } from './scheduler.js';

export type BodyFormat = 'multipart' | 'json';

export interface TransferSettings {
  apiRoot: string;
  org: string;
  apiKey: string;
  format: BodyFormat;
  concurrency: number;
  /** Requests started per second at most; 0 = no ceiling. */
  rate: number;
  /** Files per request (same entity), 1–10. */
  batch: number;
  retry: RetryPolicy;
  timeoutMs: number;
  failFast: boolean;
  allowDuplicates: boolean;
  /** Earlier runs' records, to skip what they uploaded and flag what they sent without an answer. */
  journal?: Journal;
  /** Send again (flagged possibly_duplicated) what an earlier run sent without an answer; otherwise skip it as unknown_outcome. */
  resendUnknown: boolean;
  /** Where every record and event goes: journal, report, the caller. */
  sink: OutcomeSink;
  /** Applied to every text from the server and every network error's message. */
  redact: Redact;
  /** Where relative paths start (to re-read a file met earlier when checking for repeats). */
  cwd: string;
  /** Entity media, or event media (--event). */
  objectType: 'entities' | 'events';
  dispatcher: Dispatcher;
  /** The run's own dispatcher, not the caller's: only then is a stored body's memory reused (a caller's may keep the body). */
  ownDispatcher: boolean;
  clock: Clock;
  /** Aborting it stops new starts; requests in flight finish (the first Ctrl-C). */
  drain?: AbortSignal;
  /** Aborting it also cuts requests in flight (the second Ctrl-C). */
  signal?: AbortSignal;
}

/** Counts a transfer adds to the run's summary. */
export type TransferTally = Pick<UploadSummary, 'uploaded' | 'failed' | 'skipped' | 'invalid' | 'link_outside' | 'not_sent' | 'unknown_outcome' | 'retries' | 'bytes' | 'possibly_duplicated' | 'stopped'>;

/** One request's worth of files, carried across its attempts. */
interface Job {
  files: PlannedFile[];
  /** Its first body, read ahead of its turn (small requests only). */
  prepared?: Promise<RequestBody>;
  attempts: number;
  /** An earlier attempt may have been stored: its body was fully sent but no answer came. */
  possiblyDuplicated: boolean;
}

const isAuthRefusal = (status: number) => status === 401 || status === 403;

/** Small requests read ahead of their turn: up to 16 MiB of files (about 22 MiB as JSON). */
const READ_AHEAD = 16;
/** A server's wait longer than this is said out loud: who asked, and until when. */
const ANNOUNCED_WAIT_MS = 5_000;

/**
 * Sends the checked files as they come. Retryable failures wait in a delayed queue while the
 * workers move on; FlowControl paces starts across all workers; a refused key stops the run at
 * once. Every file ends with exactly one uploaded, failed or skipped event.
 */
export async function transfer(items: AsyncIterable<Checked>, settings: TransferSettings): Promise<TransferTally> {
  const { clock, sink, journal } = settings;
  const tally: TransferTally = emptyTally();
  // stopAll cuts requests in flight (an unexpected error); stopStarts only stops new ones.
  const stopAll = new AbortController();
  const stopStarts = new AbortController();
  const requestSignal = settings.signal ? AbortSignal.any([settings.signal, stopAll.signal]) : stopAll.signal;
  const startSignal = AbortSignal.any([requestSignal, stopStarts.signal, ...(settings.drain ? [settings.drain] : [])]);
  // Every worker waits on these at once; more than Node's default of 10 listeners is expected.
  setMaxListeners(0, requestSignal, startSignal);
  // Only the body format in use is loaded: form-data alone weighs some 18 MB of memory.
  const buildBody = settings.format === 'json' ? (await import('../body/json.js')).jsonBody : (await import('../body/multipart.js')).multipartBody;
  const flow = new FlowControl({ rate: settings.rate, concurrency: settings.concurrency }, clock);
  const repeats = new RepeatFilter({ org: settings.org, cwd: settings.cwd, allowDuplicates: settings.allowDuplicates, ...(journal && { journal }) });

  const skip = (event: SkippedEvent) => {
    tally.skipped++;
    if (event.reason === 'invalid') tally.invalid++;
    if (event.reason === 'link_outside') tally.link_outside++;
    if (event.reason === 'not_sent') tally.not_sent++;
    if (event.reason === 'unknown_outcome') tally.unknown_outcome++;
    sink.event(event);
  };
  const known = (file: PlannedFile) => ({ entity_id: file.entityId, media_type: file.mediaType ?? null, bytes: file.bytes });
  const why: Record<StopReason, string> = {
    auth: 'the API refused the key',
    'fail-fast': 'a file failed (--fail-fast)',
    interrupted: 'the run was interrupted',
    'write-failed': 'the journal or report could not be written',
  };
  const notSent = (file: PlannedFile) =>
    skip({ event: 'skipped', path: file.path, reason: 'not_sent', message: `not sent: ${why[tally.stopped ?? 'interrupted']}`, ...known(file) });

  /** Files duplicate detection could no longer read, with the error it met. */
  const unreadableFiles = new Map<PlannedFile, NodeJS.ErrnoException>();
  /** Files an earlier run sent without learning the outcome: flagged whatever this run's answer. */
  const sentBefore = new WeakSet<PlannedFile>();

  /** The files to send, with everything else in the stream reported on the way. */
  async function* sendable(): AsyncGenerator<PlannedFile> {
    for await (const item of items) {
      if (item.kind !== 'file') {
        const event = eventOf(item);
        if (event.event === 'warning') sink.event(event);
        else skip(event);
      } else if (tally.stopped) notSent(item.file);
      else {
        const verdict = await repeats.check(item.file);
        // Sent on like the others, to fail in its turn: requests are read ahead, and with
        // --fail-fast, this failure must not stop the files before it.
        if ('unreadable' in verdict) {
          unreadableFiles.set(item.file, Object.assign(verdict.unreadable, { path: item.file.absPath }));
          yield item.file;
        } else if (verdict.skip) skip({ event: 'skipped', path: item.file.path, reason: verdict.skip, message: verdict.message, ...known(item.file), sha256: verdict.sha256 });
        else if ('unknownOutcome' in verdict && !settings.resendUnknown) {
          const message = `an earlier run sent it and got no answer (${journal!.path}); it may be on the entity already: check, then send it without --no-resend-unknown`;
          skip({ event: 'skipped', path: item.file.path, reason: 'unknown_outcome', message, ...known(item.file), sha256: verdict.sha256 });
        } else {
          if ('unknownOutcome' in verdict) sentBefore.add(item.file);
          yield item.file;
        }
      }
    }
  }
  const jobs = readAhead(
    (async function* (): AsyncGenerator<Job> {
      for await (const batch of batches(sendable(), settings.batch)) yield { files: batch, attempts: 0, possiblyDuplicated: false };
    })(),
    READ_AHEAD,
    (job) => {
      const unreadable = job.files.find((file) => unreadableFiles.has(file));
      if (unreadable) job.prepared = Promise.reject(unreadableFiles.get(unreadable)!);
      // A larger request streams its files, and would hold them open until its turn.
      else if (fitsWhole(job.files) && !tally.stopped) job.prepared = buildBody(job.files);
      for (const file of job.files) unreadableFiles.delete(file);
      job.prepared?.catch(() => {}); // its failure is met in handle()
    },
  );
  const scheduler = new Scheduler<Job>(jobs, clock);

  /** Jobs the run stopped before (re)sending. */
  let unfinished: Job[] = [];
  const stop = (reason: StopReason, cutInFlight: boolean) => {
    // A refused key outranks any other reason: it decides the exit code.
    if (!tally.stopped || reason === 'auth') tally.stopped = reason;
    stopStarts.abort();
    if (cutInFlight) stopAll.abort();
    unfinished = unfinished.concat(scheduler.stop()); // not push(...): thousands may wait for a retry
  };
  const onInterrupt = () => stop('interrupted', false);
  settings.drain?.addEventListener('abort', onInterrupt, { once: true });
  settings.signal?.addEventListener('abort', onInterrupt, { once: true });
  // A journal or report that cannot be written: nothing more starts, those in flight finish.
  sink.whenFailed(() => stop('write-failed', false));

  const host = new URL(settings.apiRoot).host;
  let announcedUntil = 0;
  /** A long wait a server asked for is said once: who asked, how long, and until when. */
  const announceWait = (wait: ServerWait, now: number) => {
    const until = now + wait.ms;
    if (wait.askedMs <= ANNOUNCED_WAIT_MS || until <= announcedUntil + ANNOUNCED_WAIT_MS) return;
    announcedUntil = until;
    const capped = wait.ms < wait.askedMs ? `; waiting at most ${wait.ms / 1000} s` : '';
    const event: WarningEvent = { event: 'warning', message: `${host} asked to wait ${seconds(wait.askedMs)} (${wait.header})${capped}, until ${new Date(until).toISOString()}` };
    sink.event(event);
  };

  /** What the journal says of a file in every record. */
  const described = (file: PlannedFile, sha256: string | null) => ({
    time: new Date(clock.now()).toISOString(),
    org: settings.org,
    entity_id: file.entityId,
    path: file.path,
    name: file.name,
    media_type: file.mediaType ?? null,
    sha256,
    bytes: file.bytes,
  });

  const finish = (job: Job, outcome: 'uploaded' | 'failed', detail: { status: number | null; errorCode: string | null; message: string }, digests?: readonly string[]) => {
    job.files.forEach((file, index) => {
      const sha256 = digests?.[index] ?? null;
      const possiblyDuplicated = job.possiblyDuplicated || sentBefore.has(file);
      const flagged = possiblyDuplicated ? ({ possibly_duplicated: true } as const) : {};
      if (possiblyDuplicated) tally.possibly_duplicated++;
      const record = (): OutcomeRecord => ({
        ...described(file, sha256),
        outcome,
        status: detail.status,
        attempts: job.attempts,
        ...flagged,
        ...(outcome === 'failed' && { error_code: detail.errorCode, message: detail.message }),
      });
      // Journaled before it is reported: a reported upload is in the journal, unless writing it failed.
      if (outcome === 'uploaded') {
        tally.uploaded++;
        tally.bytes += file.bytes;
        sink.outcome(record, { event: 'uploaded', path: file.path, entity_id: file.entityId, media_type: file.mediaType ?? null, bytes: file.bytes, attempts: job.attempts, sha256: sha256!, ...flagged });
      } else {
        tally.failed++;
        // A file never tried has nothing to close in the journal.
        sink.outcome(job.attempts > 0 ? record : undefined, { event: 'failed', path: file.path, entity_id: file.entityId, status: detail.status, error_code: detail.errorCode, message: detail.message, attempts: job.attempts, media_type: file.mediaType ?? null, bytes: file.bytes, ...flagged });
      }
    });
    // Any failed file counts, whether its request failed, it could no longer be read, or it
    // was the one unreadable file of a batch.
    if (outcome === 'failed' && settings.failFast && !tally.stopped) stop('fail-fast', false);
  };

  /** A file that can no longer be read fails alone, never retried; the others of its request go again without it. */
  const failUnreadable = (job: Job, error: NodeJS.ErrnoException) => {
    const isUnreadable = (file: PlannedFile) => file.absPath === error.path;
    const unreadable = job.files.filter(isUnreadable);
    // Should the error name none of them, the whole request fails rather than going round again.
    finish(unreadable.length > 0 ? { ...job, files: unreadable } : job, 'failed', fileErrorDetail(error));
    const others = unreadable.length > 0 ? job.files.filter((file) => !isUnreadable(file)) : [];
    if (others.length > 0) scheduler.defer({ ...job, files: others }, 0);
  };

  const handle = async (job: Job) => {
    let body: RequestBody;
    const { prepared } = job;
    delete job.prepared; // a retry reads its files again
    try {
      // Built before a start slot is taken: a file that fails costs neither a request nor a slot.
      body = await (prepared ?? buildBody(job.files));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).path === undefined) throw error;
      return failUnreadable(job, error as NodeJS.ErrnoException);
    }
    try {
      // Also where a stop that came while the files were read is seen.
      await flow.acquire(startSignal);
    } catch {
      body.destroy();
      unfinished.push(job); // stopped while waiting for a start slot
      return;
    }
    // The write-ahead record: should the run die with this request out, a resume knows it may be stored.
    if (job.attempts === 0) {
      const sending = (): SendingRecord[] => job.files.map((file, index) => ({ ...described(file, body.knownDigests?.[index] ?? null), outcome: 'sending' }));
      if (!sink.sending(sending)) {
        flow.release({ throttled: false });
        body.destroy();
        unfinished.push(job); // the stop has come with the failure
        return;
      }
    }
    job.attempts++;
    for (const file of job.files) sink.event({ event: 'attempt', path: file.path, entity_id: file.entityId, attempt: job.attempts });
    const result = await attempt(body, job, settings, requestSignal);
    if ('fileError' in result) {
      flow.release({ throttled: false });
      return failUnreadable(job, result.fileError);
    }
    const { outcome, message, digests } = result;
    const now = clock.now();
    const throttled = outcome.kind === 'response' && outcome.status === 429;
    const wait = outcome.kind === 'response' && shouldRetry(outcome) ? serverWait(outcome.headers, now) : undefined;
    if (wait) announceWait(wait, now);
    flow.release({ throttled, ...(throttled && wait && { resumeAt: now + wait.ms }) });

    const status = outcome.kind === 'response' ? outcome.status : null;
    const errorCode = message.errorCode;
    if (status !== null && status >= 200 && status < 300) return finish(job, 'uploaded', { status, errorCode: null, message: '' }, digests);
    if (outcome.kind === 'no-response' && outcome.bodySent) job.possiblyDuplicated = true;
    if (status !== null && isAuthRefusal(status)) {
      finish(job, 'failed', { status, errorCode, message: message.text }, body.knownDigests);
      // Nothing more starts; requests already out are let finish, so each gets a definite
      // answer (most likely a 401 too) instead of being cut and marked possibly stored.
      return stop('auth', false);
    }
    const cut = outcome.kind === 'no-response' && requestSignal.aborted;
    if (!cut && shouldRetry(outcome) && job.attempts <= settings.retry.retries && !tally.stopped) {
      const delay = retryDelayMs(settings.retry, job.attempts, outcome, now, clock.random);
      for (const file of job.files) {
        tally.retries++;
        sink.event({ event: 'retry', path: file.path, entity_id: file.entityId, attempt: job.attempts, status, error_code: errorCode, message: message.text, delay_ms: delay });
      }
      return scheduler.defer(job, delay);
    }
    finish(job, 'failed', { status, errorCode: cut ? 'interrupted' : errorCode, message: cut ? 'the upload was cut off when the run was aborted' : message.text }, body.knownDigests);
  };

  const worker = async () => {
    for (let job = await scheduler.next(startSignal); job; job = await scheduler.next(startSignal)) {
      try {
        await handle(job);
      } finally {
        scheduler.done();
      }
    }
  };
  // An unexpected error in one worker stops the others, and all are awaited before it is
  // rethrown, so no upload is still running (and unjournaled) when the caller cleans up.
  const results = await Promise.allSettled(
    Array.from({ length: settings.concurrency }, () => worker().catch((error: unknown) => {
      stop('interrupted', true);
      throw error;
    })),
  );
  settings.drain?.removeEventListener('abort', onInterrupt);
  settings.signal?.removeEventListener('abort', onInterrupt);
  const crashed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (crashed) {
    // Requests taken ahead are let go, so nothing reads on or reports after the caller cleans up.
    await jobs.return(undefined).catch(() => {});
    throw crashed.reason;
  }

  // A stopped run: files tried before end failed (they may need a look); untried ones, and
  // the rest of the stream, are reported as not sent.
  tally.stopped ??= startSignal.aborted ? 'interrupted' : undefined;
  for (const job of unfinished.concat(scheduler.stop())) {
    if (job.attempts > 0) finish(job, 'failed', { status: null, errorCode: 'stopped', message: `not retried: ${why[tally.stopped ?? 'interrupted']}` });
    else job.files.forEach(notSent);
  }
  // The rest of the input, named file by file, also after a second Ctrl-C: the summary adds up.
  for await (const job of jobs) job.files.forEach(notSent);
  return tally;
}

const seconds = (ms: number) => `${Math.round(ms / 1000).toLocaleString('en-US')} s`;

/** A file that could no longer be read (changed or removed after preflight): no retry helps. */
function fileErrorDetail(error: NodeJS.ErrnoException) {
  const errorCode = error.code ?? 'file_error';
  // file_changed carries its own words; an error from the file system gets them here.
  const message = errorCode === 'file_changed' ? error.message : `cannot read the file any more (${errorCode}); it changed or was removed after the check`;
  return { status: null, errorCode, message };
}

/** Bodies undici has written out in full: a request that then gets no answer may have been stored. */
const sentBodies = new WeakSet<object>();
subscribe('undici:request:bodySent', (message) => {
  const body = (message as { request: { body: unknown } }).request.body;
  if (typeof body === 'object' && body !== null) sentBodies.add(body);
});

type AttemptResult =
  | {
      outcome: AttemptOutcome;
      /** error_code and message of the answer, if any. */
      message: { errorCode: string | null; text: string };
      /** The files' sha256, when stored. */
      digests?: string[];
    }
  /** A file could not be read while it was sent (changed or removed since the check): no retry helps. */
  | { fileError: NodeJS.ErrnoException };

/** One request. */
async function attempt(body: RequestBody, job: Job, settings: TransferSettings, runSignal: AbortSignal): Promise<AttemptResult> {
  // One controller per attempt, its timer cleared when the attempt ends: AbortSignal.timeout()
  // and AbortSignal.any() would keep a timer and a signal alive per request for the full timeout.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, settings.timeoutMs);
  const onRunAbort = () => controller.abort();
  runSignal.addEventListener('abort', onRunAbort, { once: true });
  const url = entityMediaUrl(settings.apiRoot, settings.org, job.files[0]!.entityId, settings.objectType);
  let stored = false;
  try {
    const response = await put(url, body, { apiKey: settings.apiKey, dispatcher: settings.dispatcher, signal: controller.signal, redact: settings.redact });
    const outcome: AttemptOutcome = { kind: 'response', status: response.status, headers: response.headers };
    stored = response.status >= 200 && response.status < 300;
    return { outcome, message: { errorCode: response.errorCode, text: response.message }, ...(stored && { digests: body.digests() }) };
  } catch (error) {
    const fileError = body.fileError();
    if (fileError) return { fileError };
    const err = error as Error & { code?: string };
    const code = timedOut ? 'timeout' : (err.code ?? 'network_error');
    const text = timedOut ? `no answer within ${settings.timeoutMs / 1000} s` : settings.redact(String(err.message));
    const outcome: AttemptOutcome = { kind: 'no-response', code, message: text, bodySent: sentBodies.has(body.body) };
    return { outcome, message: { errorCode: code, text } };
  } finally {
    clearTimeout(timer);
    runSignal.removeEventListener('abort', onRunAbort);
    // An answer can come before the whole body was read (a refusal): every file the body
    // opened is closed either way. A body the API stored, it read to its end.
    body.destroy(stored && settings.ownDispatcher);
  }
}
