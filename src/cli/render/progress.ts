import type { CheckProgress, PlanEvent, UploadEvent } from '../../core/outcomes/events.js';
import { count, formatBytes, formatDuration, perSecond, plural } from '../format.js';

/** Live counts of a run, kept from its events, for the spinner and the CI progress line. */
export class Progress {
  uploaded = 0;
  failed = 0;
  skipped = 0;
  bytes = 0;
  total: number | undefined;
  /** Files an earlier run uploaded, as the journal holds them: done before this run, and no measure of its pace. */
  before = 0;
  /** The check before sending, once it has begun. */
  check: CheckProgress | undefined;
  readonly skipReasons = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private readonly retrying = new Set<string>();
  /** When this run sent its first request: its pace is measured from then, not from the check before. */
  private sendingSince: number | undefined;

  constructor(private readonly now: () => number) {}

  /** Counts an outcome; planned and warning events change nothing. */
  note(event: UploadEvent | PlanEvent): void {
    switch (event.event) {
      case 'attempt':
        this.sendingSince ??= this.now();
        this.retrying.delete(event.path);
        this.inFlight.add(event.path);
        break;
      case 'retry':
        this.inFlight.delete(event.path);
        this.retrying.add(event.path);
        break;
      case 'uploaded':
        this.settle(event.path);
        this.uploaded++;
        this.bytes += event.bytes;
        break;
      case 'failed':
        this.settle(event.path);
        this.failed++;
        break;
      case 'skipped':
        this.skipped++;
        if (event.reason === 'journal') this.before++;
        this.skipReasons.set(event.reason, (this.skipReasons.get(event.reason) ?? 0) + 1);
        break;
    }
  }

  private settle(path: string) {
    this.inFlight.delete(path);
    this.retrying.delete(path);
  }

  get done(): number {
    return this.uploaded + this.failed + this.skipped;
  }

  /** The check is under way: it has begun and has not yet given the run its total. */
  get checking(): boolean {
    return this.check !== undefined && this.total === undefined;
  }

  /** One line for a terminal: the check's progress, or counts, bytes, rate and ETA. */
  statusLine(): string {
    if (this.checking) return this.checkLine();
    // Files the journal holds are shown apart: "54/1,789 uploaded · 211 already uploaded".
    const parts = [
      `${count(this.uploaded)}${this.total !== undefined ? `/${count(this.total - this.before)}` : ''} uploaded`,
    ];
    if (this.before > 0) parts.push(`${count(this.before)} already uploaded`);
    if (this.failed > 0) parts.push(`${count(this.failed)} failed`);
    if (this.retrying.size > 0) parts.push(`${count(this.retrying.size)} retrying`);
    parts.push(`${count(this.inFlight.size)} in flight`);
    const sendingMs = this.sendingMs();
    if (sendingMs === undefined) {
      parts.push(formatBytes(this.bytes));
    } else {
      parts.push(`${formatBytes(this.bytes)} at ${formatBytes(this.bytes / (sendingMs / 1000))}/s`);
      parts.push(perSecond(this.sent, sendingMs));
    }
    const eta = this.etaMs();
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    return parts.join(' · ');
  }

  /** The CI line: `[1,200/5,000] 24% 31 files/s 0 failed`, or the check's progress. */
  ciLine(): string {
    if (this.checking) return this.checkLine();
    const percent = this.total ? ` ${Math.floor((100 * this.done) / this.total)}%` : '';
    const sendingMs = this.sendingMs();
    const rate = sendingMs === undefined ? '' : ` ${perSecond(this.sent, sendingMs)}`;
    const before = this.before > 0 ? `, ${count(this.before)} already uploaded` : '';
    const eta = this.etaMs();
    return `[${count(this.done)}/${this.total === undefined ? '?' : count(this.total)}]${percent}${rate} ${count(this.failed)} failed${before}${eta !== undefined ? ` ETA ${formatDuration(eta)}` : ''}`;
  }

  /** `checking 3,200/10,000 files`; the total once the inputs are counted. */
  private checkLine(): string {
    const { checked, total } = this.check!;
    return `checking ${total === undefined ? plural(checked, 'file') : `${count(checked)}/${count(total)} files`}`;
  }

  /** Files this run sent that have an outcome: its pace. */
  private get sent(): number {
    return this.uploaded + this.failed;
  }

  private sendingMs(): number | undefined {
    return this.sendingSince === undefined ? undefined : Math.max(1, this.now() - this.sendingSince);
  }

  /** The files left at the pace of those this run sent: a resumed run's skips take no time, and would make it look fast. */
  private etaMs(): number | undefined {
    const sendingMs = this.sendingMs();
    if (!this.total || this.sent === 0 || sendingMs === undefined || this.done >= this.total) return undefined;
    return (sendingMs / this.sent) * (this.total - this.done);
  }
}
