import type { PlanEvent, UploadEvent } from '../../core/events.js';
import { formatBytes, formatDuration, perSecond } from '../format.js';

/** Live counts of a run, kept from its events, for the spinner and the CI progress line. */
export class Progress {
  uploaded = 0;
  failed = 0;
  skipped = 0;
  bytes = 0;
  total: number | undefined;
  readonly skipReasons = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private readonly retrying = new Set<string>();

  constructor(private readonly startedAt: number) {}

  /** Counts an outcome; planned and warning events change nothing. */
  note(event: UploadEvent | PlanEvent): void {
    switch (event.event) {
      case 'attempt':
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

  /** One line for a terminal: counts, bytes, rate and ETA. */
  statusLine(now: number): string {
    const elapsedS = Math.max(0.001, (now - this.startedAt) / 1000);
    const parts = [`${this.uploaded.toLocaleString('en-US')}${this.total !== undefined ? `/${this.total.toLocaleString('en-US')}` : ''} uploaded`];
    if (this.failed > 0) parts.push(`${this.failed} failed`);
    if (this.retrying.size > 0) parts.push(`${this.retrying.size} retrying`);
    parts.push(`${this.inFlight.size} in flight`);
    parts.push(`${formatBytes(this.bytes)} at ${formatBytes(this.bytes / elapsedS)}/s`);
    parts.push(perSecond(this.done, elapsedS * 1000));
    const eta = this.etaMs(now);
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    return parts.join(' · ');
  }

  /** The CI line: `[1200/5000] 24% 31 files/s 0 failed`. */
  ciLine(now: number): string {
    const elapsedS = Math.max(0.001, (now - this.startedAt) / 1000);
    const percent = this.total ? ` ${Math.floor((100 * this.done) / this.total)}%` : '';
    const eta = this.etaMs(now);
    return `[${this.done}/${this.total ?? '?'}]${percent} ${perSecond(this.done, elapsedS * 1000)} ${this.failed} failed${eta !== undefined ? ` ETA ${formatDuration(eta)}` : ''}`;
  }

  private etaMs(now: number): number | undefined {
    if (!this.total || this.done === 0 || this.done >= this.total) return undefined;
    return ((now - this.startedAt) / this.done) * (this.total - this.done);
  }
}
