import type { UploadEvent } from './events.js';
import type { Journal } from '../journal/journal.js';
import type { OutcomeRecord, SendingRecord } from '../journal/records.js';
import type { PlannedFile } from '../inputs/plan.js';
import type { ReportWriter } from './report.js';
import type { WriteFailure } from './write-failure.js';

/**
 * Where a run's records go: the journal (write-ahead records and outcomes), the report and the
 * caller's events. The first write that fails (a full disk) is told to `onFailure`, for the run
 * to stop starting uploads; the outcomes of those in flight are still written where writing
 * still works, and always told as events, so every file is accounted for.
 */
export class OutcomeSink {
  /** The first write that failed. */
  failure: WriteFailure | undefined;
  private onFailure: (failure: WriteFailure) => void = () => {};
  private journalFailed = false;

  constructor(
    private readonly parts: { journal?: Journal; report?: ReportWriter; onEvent?: (event: UploadEvent) => void },
  ) {}

  // Records are made only when there is a journal to take them: most runs have none.

  /** Records that a request is about to leave; false when that could not be written, and the request must not leave. */
  sending(records: () => SendingRecord[]): boolean {
    return !this.journalFailed && this.journal((journal) => journal.record(...records()));
  }

  /** A file's outcome: journaled (when there is a record), then reported and told. */
  outcome(record: (() => OutcomeRecord) | undefined, event: UploadEvent, file?: PlannedFile): void {
    if (record) this.journal((journal) => journal.record(record()));
    this.event(event, file);
  }

  /**
   * An event for the report (with what is known of its file) and the caller. A caller whose
   * handler throws (the CLI's, once stdout cannot be written) stops the run as a report that
   * cannot be written does: the run's outcomes still reach the journal and the report.
   */
  event(event: UploadEvent, file?: PlannedFile): void {
    this.parts.report?.add(event, file); // takes nothing more once its stream failed
    try {
      this.parts.onEvent?.(event);
    } catch (error) {
      this.fail(
        error as NodeJS.ErrnoException,
        (error as { path?: unknown }).path === undefined
          ? 'the onEvent handler'
          : String((error as { path: unknown }).path),
      );
    }
  }

  /** Calls `stop` at the first write that fails, or at once if one failed already (the report's stream fails asynchronously). */
  whenFailed(stop: (failure: WriteFailure) => void): void {
    this.onFailure = stop;
    if (this.failure) stop(this.failure);
  }

  /** A write error: the first one stops the run. */
  fail(error: NodeJS.ErrnoException, path: string): void {
    if (this.failure) return;
    this.failure = { path, code: error.code ?? 'EIO', message: error.message };
    this.onFailure(this.failure);
  }

  /** Closes the journal and the report (ending it with the run's totals); a failure on the way (the last flush, fsync) is kept like any other. */
  async close(totals?: Record<string, unknown>): Promise<void> {
    this.journal((journal) => journal.close());
    // Only a cache: one not brought up to date is rebuilt by the next run.
    await this.parts.journal?.indexRun().catch(() => {});
    await this.parts.report?.close(totals);
  }

  private journal(action: (journal: Journal) => void): boolean {
    const { journal } = this.parts;
    if (!journal) return true;
    try {
      action(journal);
      return true;
    } catch (error) {
      this.journalFailed = true;
      this.fail(error as NodeJS.ErrnoException, journal.path);
      return false;
    }
  }
}
