import type { Clock } from '../shared/clock.js';
import { releaseCopy } from '../convert/fixer.js';
import {
  emptyTally,
  type SentChanged,
  type FailedEvent,
  type SkippedEvent,
  type WarningEvent,
  type StopReason,
  type UploadSummary,
} from '../outcomes/events.js';
import type { OutcomeRecord, SendingRecord } from '../journal/records.js';
import type { OutcomeSink } from '../outcomes/outcome-sink.js';
import type { TableWriteError } from '../disk/disk-table.js';
import { known, objectVersion, target, type PlannedFile } from '../inputs/plan.js';
import type { FileReads } from '../body/request-body.js';

/** Counts a transfer adds to the run's summary. */
export type TransferTally = Pick<
  UploadSummary,
  | 'uploaded'
  | 'failed'
  | 'skipped'
  | 'invalid'
  | 'link_outside'
  | 'not_sent'
  | 'unknown_outcome'
  | 'retries'
  | 'split'
  | 'bytes'
  | 'possibly_duplicated'
  | 'stopped'
  | 'stop_cause'
>;

/** One request's worth of files, carried across its attempts. */
export interface Job {
  files: PlannedFile[];
  /** Its small files, read whole ahead of its first attempt. */
  reads?: FileReads;
  /** The error met reading one of its files ahead of its turn (for its duplicate check): it fails when its turn comes. */
  unreadable?: NodeJS.ErrnoException;
  attempts: number;
  /** An earlier attempt may have been stored: its body was fully sent but no answer came. */
  possiblyDuplicated: boolean;
  /** Sent alone after its request of this many files was refused with a 400. */
  splitFrom?: number;
  /** How long it has waited, so far, for a file descriptor (the machine's limit on open files). */
  descriptorWaitMs?: number;
}

/** Why a file that was never sent was not: said in its not_sent event. */
const WHY: Record<StopReason, string> = {
  auth: 'the API refused the key',
  'fail-fast': 'a file failed (--fail-fast)',
  interrupted: 'the run was interrupted',
  'write-failed': "the journal, the report, the output or the run's working files could not be written",
  certificate: "the API's TLS certificate is not trusted",
  unreachable: 'the API could not be reached',
};

export const whyStopped = (reason: StopReason | undefined) => WHY[reason ?? 'interrupted'];

export interface FailureDetail {
  status: number | null;
  errorCode: string | null;
  message: string;
}

/**
 * Every file's end, counted once: uploaded, failed or skipped, journaled before it is told.
 * The tally is the run's summary in the making.
 */
export class Outcomes {
  readonly tally: TransferTally = emptyTally();
  /** Files an earlier run sent without learning the outcome: flagged whatever this run's answer. */
  readonly sentBefore = new WeakSet<PlannedFile>();

  constructor(
    private readonly sink: OutcomeSink,
    private readonly clock: Clock,
    /** Where every file of the run goes: its records say so, and count only there. */
    private readonly host: string,
    private readonly org: string,
    private readonly runId: string,
    /** Called after each file that finally failed (for --fail-fast). */
    private readonly onFailed: () => void,
  ) {}

  skip(event: SkippedEvent, file?: PlannedFile): void {
    const { tally } = this;
    tally.skipped++;
    if (event.reason === 'invalid') tally.invalid++;
    if (event.reason === 'link_outside') tally.link_outside++;
    if (event.reason === 'not_sent') tally.not_sent++;
    if (event.reason === 'unknown_outcome') tally.unknown_outcome++;
    this.sink.event(event, file);
  }

  /** A working file the run cannot do without could not be written for `file`: the run stops, as when the journal cannot be, and the file is not sent. */
  writeFailed(error: TableWriteError, file: PlannedFile): void {
    this.sink.fail(Object.assign(new Error('set TMPDIR to a folder with room'), { code: error.code }), error.path);
    this.notSent(file);
  }

  /** A warning on the way, told as it comes. */
  event(event: WarningEvent): void {
    this.sink.event(event);
  }

  /** A file the run stopped before sending. */
  notSent(file: PlannedFile): void {
    this.skip(
      {
        event: 'skipped',
        path: file.path,
        reason: 'not_sent',
        message: `not sent: ${whyStopped(this.tally.stopped)}`,
        ...known(file),
      },
      file,
    );
    releaseCopy(file);
  }

  /** The write-ahead records of a job's first attempt; false when they could not be written and the request must not leave. */
  sending(job: Job, digests: readonly string[] | undefined): boolean {
    return this.sink.sending((): SendingRecord[] =>
      job.files.map((file, index) => ({ ...this.described(file, digests?.[index] ?? null), outcome: 'sending' })),
    );
  }

  uploaded(job: Job, status: number, digests: readonly string[]): void {
    for (const [index, file] of job.files.entries()) {
      const digest = digests[index]!;
      const flagged = this.flagged(job, file);
      this.tally.uploaded++;
      this.tally.bytes += file.bytes;
      const record = (): OutcomeRecord => ({
        ...this.described(file, digest),
        outcome: 'uploaded',
        status,
        attempts: job.attempts,
        ...flagged,
      });
      const { bytes, sha256, ...sent } = onDisk(file, digest);
      this.sink.outcome(
        record,
        {
          event: 'uploaded',
          path: file.path,
          ...target(file),
          media_type: file.mediaType ?? null,
          bytes,
          attempts: job.attempts,
          sha256: sha256!,
          ...flagged,
          ...sent,
        },
        file,
      );
      releaseCopy(file);
    }
  }

  /** Any failed file counts for --fail-fast: its request failed, it could no longer be read, or it was the one unreadable file of a batch. */
  failed(job: Job, failure: FailureDetail, digests?: readonly string[]): void {
    // The report and the journal say why this file went alone.
    const detail = job.splitFrom
      ? {
          ...failure,
          message: `${failure.message} (sent alone after its request of ${job.splitFrom} files was refused)`,
        }
      : failure;
    for (const [index, file] of job.files.entries()) {
      const flagged = this.flagged(job, file);
      this.tally.failed++;
      const record = (): OutcomeRecord => ({
        ...this.described(file, digests?.[index] ?? null),
        outcome: 'failed',
        status: detail.status,
        attempts: job.attempts,
        ...flagged,
        error_code: detail.errorCode,
        message: detail.message,
      });
      const { bytes, sha256, ...sent } = onDisk(file, digests?.[index]);
      const event: FailedEvent = {
        event: 'failed',
        path: file.path,
        ...target(file),
        status: detail.status,
        error_code: detail.errorCode,
        message: detail.message,
        attempts: job.attempts,
        media_type: file.mediaType ?? null,
        bytes,
        ...(sha256 !== undefined && { sha256 }),
        ...flagged,
        ...sent,
      };
      // A file never tried has nothing to close in the journal.
      this.sink.outcome(job.attempts > 0 ? record : undefined, event, file);
      releaseCopy(file);
    }
    this.onFailed();
  }

  private flagged(job: Job, file: PlannedFile): { possibly_duplicated?: true } {
    if (!job.possiblyDuplicated && !this.sentBefore.has(file)) return {};
    this.tally.possibly_duplicated++;
    return { possibly_duplicated: true };
  }

  /** What the journal says of a file in every record. */
  private described(file: PlannedFile, sha256: string | null) {
    return {
      time: new Date(this.clock.now()).toISOString(),
      run: this.runId,
      host: this.host,
      org: this.org,
      ...target(file),
      path: file.path,
      name: file.name,
      media_type: file.mediaType ?? null,
      ...onDisk(file, sha256),
      ...journaledVersion(file),
    };
  }
}

/**
 * What a record says of a file's bytes: the original's size and sha256 (what a rerun matches
 * on), and for a changed copy, also the copy's. `digest`: the sha256 of what was sent, when known.
 */
function onDisk(file: PlannedFile, digest: string | null): { bytes: number; sha256: string | null } & SentChanged;
function onDisk(
  file: PlannedFile,
  digest: string | undefined,
): { bytes: number; sha256: string | undefined } & SentChanged;
function onDisk(file: PlannedFile, digest: string | null | undefined) {
  const { original } = file;
  if (!original) return { bytes: file.bytes, sha256: digest };
  return {
    bytes: original.bytes,
    sha256: original.sha256,
    sent_name: file.name,
    sent_bytes: file.bytes,
    ...(digest != null && { sent_sha256: digest }),
    changes: original.changes,
  };
}

/** An object's ETag and version as its records say them: what a rerun knows it by without reading it. */
function journaledVersion(file: PlannedFile): { etag?: string; version_id?: string } {
  const version = objectVersion(file);
  return {
    ...(version?.etag && { etag: version.etag }),
    ...(version?.version_id && { version_id: version.version_id }),
  };
}
