import { setMaxListeners } from 'node:events';
import type { Clock } from '../shared/clock.js';
import type { BodyReader } from '../body/reader-threads.js';
import { readPath, type BodyBuilder, type RequestBody } from '../body/request-body.js';
import { mediaUrl } from '../connection/hosts.js';
import type { Fixer } from '../convert/fixer.js';
import type { Journal } from '../journal/journal.js';
import type { OutcomeSink } from '../outcomes/outcome-sink.js';
import type { Redact } from '../shared/redact.js';
import type { StopReason } from '../outcomes/events.js';
import { target, type Checked } from '../inputs/plan.js';
import { attempt, classify } from './attempt.js';
import { Reachability } from './connect-errors.js';
import { RepeatFilter } from './dedupe.js';
import type { Scratch } from '../disk/scratch.js';
import { FlowControl } from './flow-control.js';
import { jobsOf } from './jobs.js';
import { Outcomes, whyStopped, type FailureDetail, type Job, type TransferTally } from './outcomes.js';
import { serverWait, shouldRetry, type RetryPolicy, type ServerWait } from './retry-policy.js';
import { Scheduler } from './scheduler.js';
import { DESCRIPTOR_WAIT_MS, descriptorsMessage, isOutOfDescriptors, limitShown } from '../files/descriptors.js';
import type { Transport } from './transport.js';
import { isS3Url } from '../s3/url.js';

export type { TransferTally } from './outcomes.js';
export type BodyFormat = 'multipart' | 'json';

/** What a run sends and how. */
export interface TransferSettings {
  apiRoot: string;
  org: string;
  /** Names the run in every journal record. */
  runId: string;
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
  /** Applied to every network error's message (the transport redacts what the server says). */
  redact: Redact;
  /** Where relative paths start (to re-read a file met earlier when checking for repeats). */
  cwd: string;
  /** Aborting it stops new starts; requests in flight finish (the first Ctrl-C). */
  drain?: AbortSignal;
  /** Aborting it also cuts requests in flight (the second Ctrl-C). */
  signal?: AbortSignal;
}

/** The parts a run is built from; the caller makes them and closes them. */
export interface EngineParts {
  transport: Transport;
  reader: BodyReader;
  clock: Clock;
  /** Where every record and event goes: journal, report, the caller. */
  sink: OutcomeSink;
  /** Makes the changed copies sent for --convert, --fit and --strip-location. */
  fixer?: Fixer;
  /** Where what the run remembers of every file is kept. */
  scratch: Scratch;
}

/**
 * Sends the checked files as they come. Retryable failures wait in a delayed queue while the
 * workers move on; FlowControl paces starts across all workers; a refused key or an untrusted
 * certificate stops the run at once, and so do connections that keep failing before any answer
 * came. Every file ends with exactly one uploaded, failed or skipped event.
 */
export async function transfer(
  items: AsyncIterable<Checked>,
  settings: TransferSettings,
  parts: EngineParts,
): Promise<TransferTally> {
  // Only the body format in use is loaded: form-data alone weighs some 18 MB of memory.
  const buildBody: BodyBuilder =
    settings.format === 'json'
      ? (await import('../body/json.js')).jsonBody
      : (await import('../body/multipart.js')).multipartBody;
  return new Transfer(settings, parts, buildBody).run(items);
}

/** A server's wait longer than this is said out loud: who asked, and until when. */
const ANNOUNCED_WAIT_MS = 5_000;

/** One run of the engine: its workers, its stop, and the accounting at its end. */
class Transfer {
  private readonly outcomes: Outcomes;
  private readonly flow: FlowControl;
  /** Cuts requests in flight (the second Ctrl-C, an unexpected error). */
  private readonly stopAll = new AbortController();
  /** Stops new starts only. */
  private readonly stopStarts = new AbortController();
  private readonly requestSignal: AbortSignal;
  private readonly startSignal: AbortSignal;
  private scheduler!: Scheduler<Job>;
  /** Jobs the run stopped before (re)sending. */
  private unfinished: Job[] = [];
  private announcedUntil = 0;
  private descriptorsWarned = false;
  private readonly reachability = new Reachability();

  constructor(
    private readonly settings: TransferSettings,
    private readonly parts: EngineParts,
    private readonly buildBody: BodyBuilder,
  ) {
    this.outcomes = new Outcomes(parts.sink, parts.clock, settings.apiRoot, settings.org, settings.runId, () => {
      if (settings.failFast && !this.outcomes.tally.stopped) this.stop('fail-fast', false);
    });
    this.flow = new FlowControl({ rate: settings.rate, concurrency: settings.concurrency }, parts.clock);
    this.requestSignal = settings.signal
      ? AbortSignal.any([settings.signal, this.stopAll.signal])
      : this.stopAll.signal;
    this.startSignal = AbortSignal.any([
      this.requestSignal,
      this.stopStarts.signal,
      ...(settings.drain ? [settings.drain] : []),
    ]);
    // Every worker waits on these at once; more than Node's default of 10 listeners is expected.
    setMaxListeners(0, this.requestSignal, this.startSignal);
  }

  async run(items: AsyncIterable<Checked>): Promise<TransferTally> {
    const { settings, parts, outcomes } = this;
    const repeats = new RepeatFilter({
      host: settings.apiRoot,
      org: settings.org,
      cwd: settings.cwd,
      allowDuplicates: settings.allowDuplicates,
      scratch: parts.scratch,
      reader: parts.reader,
      ...(settings.journal && { journal: settings.journal }),
    });
    const jobs = jobsOf(
      items,
      { outcomes, repeats, reader: parts.reader, ...(parts.fixer && { fixer: parts.fixer }) },
      settings,
    );
    this.scheduler = new Scheduler<Job>(jobs, parts.clock);
    const onInterrupt = () => this.stop('interrupted', false);
    settings.drain?.addEventListener('abort', onInterrupt, { once: true });
    settings.signal?.addEventListener('abort', onInterrupt, { once: true });
    // A journal or report that cannot be written: nothing more starts, those in flight finish.
    parts.sink.whenFailed(() => this.stop('write-failed', false));
    try {
      await this.workers();
    } catch (error) {
      // Requests taken ahead are let go, so nothing reads on or reports after the caller cleans up.
      await jobs.return(undefined).catch(() => {});
      throw error;
    } finally {
      settings.drain?.removeEventListener('abort', onInterrupt);
      settings.signal?.removeEventListener('abort', onInterrupt);
    }
    // A stopped run: files tried before end failed (they may need a look); untried ones, and
    // the rest of the stream, are reported as not sent.
    const { tally } = outcomes;
    tally.stopped ??= this.startSignal.aborted ? 'interrupted' : undefined;
    for (const job of this.unfinished.concat(this.scheduler.stop())) {
      if (job.attempts > 0)
        outcomes.failed(job, {
          status: null,
          errorCode: 'stopped',
          message: `not retried: ${whyStopped(tally.stopped)}`,
        });
      else job.files.forEach((file) => outcomes.notSent(file));
    }
    // The rest of the input, named file by file, also after a second Ctrl-C: the summary adds up.
    for await (const job of jobs) job.files.forEach((file) => outcomes.notSent(file));
    return tally;
  }

  /**
   * `concurrency` workers take jobs until none is left. An unexpected error in one stops the
   * others, and all are awaited before it is rethrown, so no upload is still running (and
   * unjournaled) when the caller cleans up.
   */
  private async workers(): Promise<void> {
    const worker = async () => {
      for (
        let job = await this.scheduler.next(this.startSignal);
        job;
        job = await this.scheduler.next(this.startSignal)
      ) {
        try {
          await this.handle(job);
        } finally {
          this.scheduler.done();
        }
      }
    };
    const results = await Promise.allSettled(
      Array.from({ length: this.settings.concurrency }, () =>
        worker().catch((error: unknown) => {
          this.stop('interrupted', true);
          throw error;
        }),
      ),
    );
    const crashed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (crashed) throw crashed.reason;
  }

  /** `cause`: the network error behind a certificate or unreachable stop, for the summary. */
  private stop(reason: StopReason, cutInFlight: boolean, cause?: FailureDetail): void {
    const { tally } = this.outcomes;
    // A refused key outranks any other reason: it decides the exit code.
    if (!tally.stopped || reason === 'auth') {
      tally.stopped = reason;
      if (cause) tally.stop_cause = { error_code: cause.errorCode ?? 'network_error', message: cause.message };
    }
    this.stopStarts.abort();
    if (cutInFlight) this.stopAll.abort();
    this.unfinished = this.unfinished.concat(this.scheduler.stop()); // not push(...): thousands may wait for a retry
  }

  /** One job's turn: its URL and body, a start slot, the write-ahead record, the attempt, and what comes of it. */
  private async handle(job: Job): Promise<void> {
    const { reads, unreadable } = job;
    // A retry reads its files again.
    delete job.reads;
    delete job.unreadable;
    // Everything that can fail for the request's own sake comes before the write-ahead record: a
    // request that cannot be made fails its files, and no record says it may have been stored.
    let url: string;
    try {
      const first = job.files[0]!;
      url = mediaUrl(this.settings.apiRoot, this.settings.org, first.entityId, first.object);
    } catch (error) {
      return this.outcomes.failed(job, {
        status: null,
        errorCode: 'invalid_request',
        message: `cannot make the request: ${(error as Error).message}`,
      });
    }
    if (unreadable) return this.failUnreadable(job, unreadable);
    let body: RequestBody;
    try {
      // Built before a start slot is taken: a file that fails costs neither a request nor a slot.
      body = await this.buildBody(job.files, this.parts.reader, reads);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).path === undefined) throw error;
      return this.failUnreadable(job, error as NodeJS.ErrnoException);
    }
    try {
      // Also where a stop that came while the files were read is seen.
      await this.flow.acquire(this.startSignal);
    } catch {
      body.destroy();
      this.unfinished.push(job); // stopped while waiting for a start slot
      return;
    }
    // The write-ahead record: should the run die with this request out, a resume knows it may be stored.
    if (job.attempts === 0 && !this.outcomes.sending(job, body.knownDigests)) {
      this.flow.release({ throttled: false });
      body.destroy();
      this.unfinished.push(job); // the stop has come with the failure
      return;
    }
    job.attempts++;
    for (const file of job.files)
      this.parts.sink.event({ event: 'attempt', path: file.path, ...target(file), attempt: job.attempts });
    await this.send(job, url, body);
  }

  private async send(job: Job, url: string, body: RequestBody): Promise<void> {
    const { settings, parts, outcomes } = this;
    const result = await attempt(
      body,
      url,
      { ...parts, redact: settings.redact, timeoutMs: settings.timeoutMs },
      this.requestSignal,
    );
    if ('fileError' in result) {
      this.flow.release({ throttled: false });
      return this.failUnreadable(job, result.fileError);
    }
    const { outcome, detail } = result;
    const now = parts.clock.now();
    const throttled = outcome.kind === 'response' && outcome.status === 429;
    const wait = outcome.kind === 'response' && shouldRetry(outcome) ? serverWait(outcome.headers, now) : undefined;
    if (wait) this.announce(wait, now);
    this.flow.release({ throttled, ...(throttled && wait && { resumeAt: now + wait.ms }) });
    if (outcome.kind === 'no-response' && outcome.bodySent) job.possiblyDuplicated = true;

    const cut = outcome.kind === 'no-response' && this.requestSignal.aborted;
    // A connection this machine had no descriptor for says nothing of the API: the request waits for one, as a file does.
    if (!cut && outcome.kind === 'no-response' && !outcome.reached && isOutOfDescriptors(outcome))
      return this.failUnreadable(job, Object.assign(new Error(outcome.message), { code: outcome.code }));
    // Connections that keep failing before any answer came: retrying every file would change nothing.
    if (!cut && this.reachability.note(outcome)) this.stop('unreachable', false, detail);
    const verdict = classify(outcome, detail, {
      attempts: job.attempts,
      policy: settings.retry,
      stopped: outcomes.tally.stopped !== undefined,
      cut,
      now,
      random: () => parts.clock.random(),
    });
    switch (verdict.kind) {
      case 'uploaded':
        return outcomes.uploaded(job, verdict.status, result.digests!);
      case 'refused':
        outcomes.failed(job, verdict.detail, body.knownDigests);
        // Nothing more starts; requests already out are let finish, so each gets a definite
        // answer (most likely a 401 too) instead of being cut and marked possibly stored.
        return this.stop('auth', false);
      case 'untrusted':
        outcomes.failed(job, verdict.detail, body.knownDigests);
        return this.stop('certificate', false, verdict.detail);
      case 'retry':
        for (const file of job.files) {
          outcomes.tally.retries++;
          parts.sink.event({
            event: 'retry',
            path: file.path,
            ...target(file),
            attempt: job.attempts,
            status: detail.status,
            error_code: detail.errorCode,
            message: detail.message,
            delay_ms: verdict.delayMs,
          });
        }
        return this.scheduler.defer(job, verdict.delayMs);
      case 'failed':
        // A 400 stores nothing, and one bad item refuses the whole request: each file goes alone, so only the one at fault fails.
        if (verdict.detail.status === 400 && job.files.length > 1) return this.split(job, verdict.detail);
        return outcomes.failed(job, verdict.detail, body.knownDigests);
    }
  }

  /** A request of several files refused as invalid: each file is sent alone at once. The first is said; the summary counts them all. */
  private split(job: Job, detail: FailureDetail): void {
    if (this.outcomes.tally.split++ === 0) {
      const first = job.files[0]!;
      this.outcomes.event({
        event: 'warning',
        message: `a request of ${job.files.length} files to ${first.entityId} was refused (HTTP 400: ${detail.message}); each such request is sent again file by file, so only the file at fault fails`,
      });
    }
    for (const file of job.files) this.scheduler.defer({ ...job, files: [file], splitFrom: job.files.length }, 0);
  }

  /** A file that can no longer be read fails alone, never retried; the others of its request go again without it. */
  private failUnreadable(job: Job, error: NodeJS.ErrnoException): void {
    // Too few file descriptors is the machine's limit, not the files': the request waits for
    // others to close theirs, and goes again; only a wait with none ever free fails it, naming the limit.
    if (isOutOfDescriptors(error) && (job.descriptorWaitMs ?? 0) < DESCRIPTOR_WAIT_MS) {
      if (!this.descriptorsWarned) {
        this.descriptorsWarned = true;
        this.outcomes.event({
          event: 'warning',
          message: `the limit on open files${limitShown()} was reached (${error.code ?? 'EMFILE'}); files wait for others to close, which slows the run: raise it (ulimit -n 4096) or lower --concurrency`,
        });
      }
      const delay = 50;
      return this.scheduler.defer({ ...job, descriptorWaitMs: (job.descriptorWaitMs ?? 0) + delay }, delay);
    }
    if (isOutOfDescriptors(error)) error.message = descriptorsMessage();
    const isUnreadable = (file: Job['files'][number]) => readPath(file) === error.path;
    const unreadable = job.files.filter(isUnreadable);
    // Should the error name none of them, the whole request fails rather than going round again.
    this.outcomes.failed(unreadable.length > 0 ? { ...job, files: unreadable } : job, fileErrorDetail(error));
    const others = unreadable.length > 0 ? job.files.filter((file) => !isUnreadable(file)) : [];
    if (others.length > 0) this.scheduler.defer({ ...job, files: others }, 0);
  }

  /** A long wait a server asked for is said once: who asked, how long, and until when. */
  private announce(wait: ServerWait, now: number): void {
    const until = now + wait.ms;
    if (wait.askedMs <= ANNOUNCED_WAIT_MS || until <= this.announcedUntil + ANNOUNCED_WAIT_MS) return;
    this.announcedUntil = until;
    const host = new URL(this.settings.apiRoot).host;
    const capped = wait.ms < wait.askedMs ? `; waiting at most ${wait.ms / 1000} s` : '';
    this.outcomes.event({
      event: 'warning',
      message: `${host} asked to wait ${seconds(wait.askedMs)} (${wait.header})${capped}, until ${new Date(until).toISOString()}`,
    });
  }
}

const seconds = (ms: number) => `${Math.round(ms / 1000).toLocaleString('en-US')} s`;

/** A file that could no longer be read (changed or removed after preflight): no retry helps. */
function fileErrorDetail(error: NodeJS.ErrnoException): FailureDetail {
  const errorCode = error.code ?? 'file_error';
  // file_changed, the limit on open files and the storage of s3:// paths carry their own words; an error from the file system gets them here.
  const ownWords = errorCode === 'file_changed' || isOutOfDescriptors(error) || isS3Url(error.path ?? '');
  const message = ownWords
    ? error.message
    : `cannot read the file any more (${errorCode}); it changed or was removed after the check`;
  return { status: null, errorCode, message };
}
