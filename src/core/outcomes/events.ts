import type { MediaTypeSource } from '../inputs/media-type.js';
import type { LinkedObject } from '../inputs/objects.js';
import type { Change, Checked, SkipReason } from '../inputs/plan.js';
import type { Detected } from '../files/sniff.js';
import type { WriteFailure } from './write-failure.js';

/** Events use the `--json` contract's field names, so the CLI prints them as they are. */
export interface UploadedEvent extends SentChanged {
  event: 'uploaded';
  path: string;
  entity_id: string;
  /** What entity_id names when it is not an entity: events, alerts or cases. */
  object?: LinkedObject;
  media_type: string | null;
  bytes: number;
  attempts: number;
  /** sha256 of the file on disk, for audit: the bytes sent, unless it was changed (then see sent_sha256). */
  sha256: string;
  possibly_duplicated?: true;
}

/** Said of a file sent changed (--convert, --fit, --strip-location): `bytes` and `sha256` are then the original's. */
export interface SentChanged {
  /** The media name it was sent under (`.heic` → `.jpg`). */
  sent_name?: string;
  sent_bytes?: number;
  sent_sha256?: string;
  changes?: Change[];
}

export interface FailedEvent extends SentChanged {
  event: 'failed';
  path: string;
  entity_id: string;
  /** What entity_id names when it is not an entity: events, alerts or cases. */
  object?: LinkedObject;
  /** HTTP status, or null when no response came (network error). */
  status: number | null;
  error_code: string | null;
  message: string;
  attempts: number;
  media_type: string | null;
  bytes: number;
  /** sha256 of the file, when it was read before the failure. */
  sha256?: string;
  possibly_duplicated?: true;
}

/** A request for the file starts (with --verbose, one line per attempt). */
export interface AttemptEvent {
  event: 'attempt';
  path: string;
  entity_id: string;
  /** What entity_id names when it is not an entity: events, alerts or cases. */
  object?: LinkedObject;
  /** 1 for the first try. */
  attempt: number;
}

/** An attempt failed in a way worth retrying; the file waits `delay_ms` while others go on. */
export interface RetryEvent {
  event: 'retry';
  path: string;
  entity_id: string;
  /** What entity_id names when it is not an entity: events, alerts or cases. */
  object?: LinkedObject;
  /** The attempt that failed (1 = the first try). */
  attempt: number;
  /** HTTP status, or null when no response came. */
  status: number | null;
  error_code: string | null;
  message: string;
  delay_ms: number;
}

export interface SkippedEvent {
  event: 'skipped';
  path: string;
  reason: SkipReason;
  message: string;
  /** Known for files that passed preflight (journal, duplicate, not_sent). */
  entity_id?: string;
  object?: LinkedObject;
  media_type?: string | null;
  bytes?: number;
  sha256?: string;
}

export interface PlannedEvent {
  event: 'planned';
  path: string;
  entity_id: string;
  /** What entity_id names when it is not an entity: events, alerts or cases. */
  object?: LinkedObject;
  media_type: string | null;
  media_type_source: MediaTypeSource;
  bytes: number;
  /** What its content was detected as (jpeg, png, pdf, heic, …, or unknown); null when not checked (--no-sniff, txt, raw). */
  detected: Detected | null;
  /** What will be done to it before sending: convert, fit, strip_location (GPS taken out if it has any). */
  fix?: Array<'convert' | 'fit' | 'strip_location'>;
  /** The name it will be sent under, when not its own (`.heic` → `.jpg`). */
  sent_name?: string;
  /** An earlier run sent it and got no answer: it is sent again, and may then be stored twice. */
  possibly_duplicated?: true;
}

export interface UploadSummary {
  event: 'summary';
  /** Files considered: uploaded + failed + skipped; 0 when the run was interrupted during its check, before any was. */
  total: number;
  uploaded: number;
  failed: number;
  skipped: number;
  /** Of the skipped, those skipped as invalid inputs (--skip-invalid); they make the run exit 1. */
  invalid: number;
  /** Of the skipped, links out of the folder walked, not followed (without --follow-links); they make the run exit 1. */
  link_outside: number;
  /** Of the skipped, those never sent because the run stopped early (see `stopped`). */
  not_sent: number;
  /** Of the skipped, those an earlier run sent without an answer, not sent again (--no-resend-unknown); they make the run exit 1. */
  unknown_outcome: number;
  retries: number;
  /** Requests of several files refused with a 400 and sent again file by file (--batch). */
  split: number;
  /** File bytes uploaded. */
  bytes: number;
  duration_ms: number;
  possibly_duplicated: number;
  /** Why the run stopped before every file had an outcome. */
  stopped?: StopReason;
  /** For a `certificate` or `unreachable` stop: the network error that stopped the run. */
  stop_cause?: { error_code: string; message: string };
  /** `k/n` when the run took one shard of the files (--shard). */
  shard?: string;
  /** Names the run in the journal's records and the report's header. */
  run_id: string;
  /** The API root the files went to, the org, and the config file the settings came from (or null). */
  host: string;
  org: string;
  config: string | null;
  /** The proxy the run went through, credentials masked (`http://***@proxy:3128`), or null. */
  proxy: string | null;
  /** The journal the run read and appended to, or null: none (--no-journal), or none left because the one this run made recorded no file stored (a mistyped host, a refused key). */
  journal: string | null;
  /** A journal or report write that failed (a full disk): the run stopped starting uploads, or its records end short. */
  write_error?: WriteFailure;
}

/** How far the check before sending has come: inputs checked, and all of them once counted (for progress; not a --json event). */
export interface CheckProgress {
  checked: number;
  total: number | undefined;
}

/** The counts of a run before any file has an outcome. */
export const emptyTally = () => ({
  uploaded: 0,
  failed: 0,
  skipped: 0,
  invalid: 0,
  link_outside: 0,
  not_sent: 0,
  unknown_outcome: 0,
  retries: 0,
  split: 0,
  bytes: 0,
  possibly_duplicated: 0,
});

export interface DryRunSummary {
  event: 'summary';
  dry_run: true;
  planned: number;
  skipped: number;
  invalid: number;
  link_outside: number;
  /** Of the skipped, what an earlier run sent without an answer (with resendUnknown off): the real run ends with exit 1 for them. */
  unknown_outcome: number;
  /** Files the duplicate check could not read: the real run fails them (exit 1). */
  unreadable: number;
  bytes: number;
  shard?: string;
}

/** A dry run's summary before any input is checked. */
export const emptyDryRun = (): DryRunSummary => ({
  event: 'summary',
  dry_run: true,
  planned: 0,
  skipped: 0,
  invalid: 0,
  link_outside: 0,
  unknown_outcome: 0,
  unreadable: 0,
  bytes: 0,
});

/** Something the user should know that does not stop the run, e.g. an unrecognised media_type; `path` (and `line`, in a manifest): the input it was found in. */
export interface WarningEvent {
  event: 'warning';
  message: string;
  path?: string;
  line?: number;
}

/**
 * A refused key, --fail-fast after a failure, the user's Ctrl-C / SIGTERM, a journal or report
 * that could not be written, a TLS certificate not trusted, or an API (or proxy) that could
 * not be reached at all.
 */
export type StopReason = 'auth' | 'fail-fast' | 'interrupted' | 'write-failed' | 'certificate' | 'unreachable';

export type UploadEvent = UploadedEvent | FailedEvent | AttemptEvent | RetryEvent | SkippedEvent | WarningEvent;
export type PlanEvent = PlannedEvent | SkippedEvent | WarningEvent;

/** How a checked input that is not a file to send is reported: a warning, or a skip. */
export function eventOf(item: Exclude<Checked, { kind: 'file' }>): WarningEvent | SkippedEvent {
  if (item.kind === 'warning') return { event: 'warning', message: item.message, ...item.at };
  if (item.kind === 'skip') return { event: 'skipped', path: item.path, reason: item.reason, message: item.message };
  return { event: 'skipped', path: item.problem.path, reason: 'invalid', message: item.problem.message };
}
