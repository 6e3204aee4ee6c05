import { setMaxListeners } from 'node:events';
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.js';
import { jsonBody } from '../body/json.js';
import { multipartBody } from '../body/multipart.js';
import type { RequestBody } from '../body/request-body.js';
import { entityMediaUrl } from '../hosts.js';
import type { Journal } from '../journal.js';
import type { SkippedEvent, StopReason, UploadEvent, UploadSummary } from '../events.js';
import type { PlannedFile } from '../plan.js';
import { batches } from './batches.js';
import { put } from './client.js';
import { withoutRepeats } from './dedupe.js';
import { FlowControl } from './flow-control.js';
import { retryDelayMs, serverHintMs, shouldRetry, type AttemptOutcome, type RetryPolicy } from './retry-policy.js';
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
  journal?: Journal;
  dispatcher: Dispatcher;
  clock: Clock;
  /** Aborting it stops new starts; requests in flight finish (the first Ctrl-C). */
  drain?: AbortSignal;
  /** Aborting it also cuts requests in flight (the second Ctrl-C). */
  signal?: AbortSignal;
  onEvent: (event: UploadEvent) => void;
}

/** Counts a transfer adds to the run's summary. */
export type TransferTally = Pick<UploadSummary, 'uploaded' | 'failed' | 'skipped' | 'not_sent' | 'retries' | 'bytes' | 'possibly_duplicated' | 'stopped'>;

/** One request's worth of files, carried across its attempts. */
interface Job {
  files: PlannedFile[];
  attempts: number;
  /** An earlier attempt may have been stored: its body was fully sent but no answer came. */
  possiblyDuplicated: boolean;
}

const isAuthRefusal = (status: number) => status === 401 || status === 403;

/**
 * Sends the planned files. Retryable failures wait in a delayed queue while the workers move
 * on; FlowControl paces starts across all workers; a refused key stops the run at once.
 */
export async function transfer(files: readonly PlannedFile[], settings: TransferSettings): Promise<TransferTally> {
  const { clock, onEvent, journal } = settings;
  const tally: TransferTally = { uploaded: 0, failed: 0, skipped: 0, not_sent: 0, retries: 0, bytes: 0, possibly_duplicated: 0 };
  const stopAll = new AbortController();
  const requestSignal = settings.signal ? AbortSignal.any([settings.signal, stopAll.signal]) : stopAll.signal;
  const startSignal = AbortSignal.any([requestSignal, ...(settings.drain ? [settings.drain] : [])]);
  // Every worker waits on these at once; more than Node's default of 10 listeners is expected.
  setMaxListeners(0, requestSignal, startSignal);
  const flow = new FlowControl({ rate: settings.rate, concurrency: settings.concurrency }, clock);

  // Files with an outcome; the rest, when the run stops early, are reported as not sent.
  const settled = new Set<PlannedFile>();
  const skip = (file: PlannedFile, event: SkippedEvent) => {
    settled.add(file);
    tally.skipped++;
    onEvent(event);
  };
  const fresh = withoutRepeats(files, {
    org: settings.org,
    allowDuplicates: settings.allowDuplicates,
    onSkip: skip,
    ...(journal && { journal }),
  });
  const jobs = (async function* () {
    for await (const batch of batches(fresh, settings.batch)) yield { files: batch, attempts: 0, possiblyDuplicated: false };
  })();
  const scheduler = new Scheduler<Job>(jobs, clock);

  const leftovers: Job[] = [];
  const stop = (reason: StopReason, cutInFlight: boolean) => {
    tally.stopped ??= reason;
    if (cutInFlight) stopAll.abort();
    leftovers.push(...scheduler.stop());
  };
  const onInterrupt = () => stop('interrupted', false);
  settings.drain?.addEventListener('abort', onInterrupt, { once: true });
  settings.signal?.addEventListener('abort', onInterrupt, { once: true });

  const finish = (job: Job, outcome: 'uploaded' | 'failed', detail: { status: number | null; errorCode: string | null; message: string }, digests?: string[]) => {
    job.files.forEach((file, index) => {
      settled.add(file);
      const sha256 = digests?.[index] ?? null;
      const flagged = job.possiblyDuplicated ? ({ possibly_duplicated: true } as const) : {};
      if (job.possiblyDuplicated) tally.possibly_duplicated++;
      journal?.record({
        time: new Date(clock.now()).toISOString(),
        outcome,
        org: settings.org,
        entity_id: file.entityId,
        path: file.path,
        name: file.name,
        media_type: file.mediaType ?? null,
        sha256,
        bytes: file.bytes,
        status: detail.status,
        attempts: job.attempts,
        ...flagged,
        ...(outcome === 'failed' && { error_code: detail.errorCode, message: detail.message }),
      });
      if (outcome === 'uploaded') {
        tally.uploaded++;
        tally.bytes += file.bytes;
        onEvent({ event: 'uploaded', path: file.path, entity_id: file.entityId, media_type: file.mediaType ?? null, bytes: file.bytes, attempts: job.attempts, ...flagged });
      } else {
        tally.failed++;
        onEvent({ event: 'failed', path: file.path, entity_id: file.entityId, status: detail.status, error_code: detail.errorCode, message: detail.message, attempts: job.attempts, ...flagged });
      }
    });
  };

  const handle = async (job: Job) => {
    try {
      await flow.acquire(startSignal);
    } catch {
      // Stopped while waiting for a start slot: a retry ends failed, a fresh job counts as not sent.
      if (job.attempts > 0) leftovers.push(job);
      return;
    }
    job.attempts++;
    const body = (settings.format === 'json' ? jsonBody : multipartBody)(job.files);
    const { outcome, message } = await attempt(body, job, settings, requestSignal);
    const now = clock.now();
    const hint = outcome.kind === 'response' && outcome.status === 429 ? serverHintMs(outcome.headers, now) : undefined;
    flow.release({ throttled: outcome.kind === 'response' && outcome.status === 429, ...(hint !== undefined && { resumeAt: now + hint }) });

    const status = outcome.kind === 'response' ? outcome.status : null;
    const errorCode = message.errorCode;
    if (status !== null && status >= 200 && status < 300) return finish(job, 'uploaded', { status, errorCode: null, message: '' }, body.digests());
    if (outcome.kind === 'no-response' && outcome.bodySent) job.possiblyDuplicated = true;
    if (status !== null && isAuthRefusal(status)) {
      finish(job, 'failed', { status, errorCode, message: message.text });
      return stop('auth', true);
    }
    const cut = outcome.kind === 'no-response' && requestSignal.aborted;
    if (!cut && shouldRetry(outcome) && job.attempts <= settings.retry.retries && !tally.stopped) {
      const delay = retryDelayMs(settings.retry, job.attempts, outcome, now, clock.random);
      for (const file of job.files) {
        tally.retries++;
        onEvent({ event: 'retry', path: file.path, entity_id: file.entityId, attempt: job.attempts, status, error_code: errorCode, message: message.text, delay_ms: delay });
      }
      return scheduler.defer(job, delay);
    }
    finish(job, 'failed', { status, errorCode: cut ? 'interrupted' : errorCode, message: cut ? 'the upload was cut off when the run was aborted' : message.text });
    if (settings.failFast) stop('fail-fast', false);
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
  try {
    await Promise.all(Array.from({ length: settings.concurrency }, worker));
  } finally {
    settings.drain?.removeEventListener('abort', onInterrupt);
    settings.signal?.removeEventListener('abort', onInterrupt);
  }

  // Files waiting for a retry when the run stopped end as failed, keeping their flag.
  for (const job of leftovers.concat(scheduler.stop())) {
    finish(job, 'failed', { status: null, errorCode: 'stopped', message: `not retried: the run stopped (${tally.stopped ?? 'stopped'})` });
  }
  const why = { auth: 'the API refused the key', 'fail-fast': 'a file failed (--fail-fast)', interrupted: 'the run was interrupted' };
  for (const file of files) {
    if (settled.has(file)) continue;
    tally.not_sent++;
    skip(file, { event: 'skipped', path: file.path, reason: 'not_sent', message: `not sent: ${why[tally.stopped ?? 'interrupted']}` });
  }
  return tally;
}

/** One request: its outcome, and the error_code/message of the answer, if any. */
async function attempt(body: RequestBody, job: Job, settings: TransferSettings, runSignal: AbortSignal) {
  let bodySent = false;
  body.body.once('end', () => (bodySent = true));
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const url = entityMediaUrl(settings.apiRoot, settings.org, job.files[0]!.entityId);
  try {
    const response = await put(url, body, { apiKey: settings.apiKey, dispatcher: settings.dispatcher, signal: AbortSignal.any([runSignal, timeout]) });
    const outcome: AttemptOutcome = { kind: 'response', status: response.status, headers: response.headers };
    return { outcome, message: { errorCode: response.errorCode, text: response.message } };
  } catch (error) {
    body.body.destroy();
    const fileError = body.fileError();
    if (fileError) {
      const code = fileError.code ?? 'file_error';
      const text = `cannot read the file any more (${code}); it changed or was removed after the check`;
      return { outcome: { kind: 'file-error', code, message: text } as AttemptOutcome, message: { errorCode: code, text } };
    }
    const err = error as Error & { code?: string };
    const timedOut = timeout.aborted && !runSignal.aborted;
    const code = timedOut ? 'timeout' : (err.code ?? 'network_error');
    const text = timedOut ? `no answer within ${settings.timeoutMs / 1000} s` : err.message;
    const outcome: AttemptOutcome = { kind: 'no-response', code, message: text, bodySent };
    return { outcome, message: { errorCode: code, text } };
  }
}
