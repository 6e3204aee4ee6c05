import type { Writable } from 'node:stream';
import type { DryRunSummary, PlanEvent, UploadEvent, UploadSummary } from '../core/events.js';
import { formatBytes, formatDuration, plural } from './format.js';

/** Writes a run's events: as JSON lines on stdout, or as plain lines (details on stderr, results on stdout). */
export interface Renderer {
  event(event: UploadEvent | PlanEvent): void;
  summary(summary: UploadSummary | DryRunSummary): void;
}

// A file name can hold line breaks or escape codes; a log line must not.
const printable = (line: string) =>
  line.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));

// Expected in bulk on a resumed or stopped run: counted in the summary, not listed one by one.
const QUIET_SKIPS = new Set(['journal', 'not_sent']);

export function createRenderer(json: boolean, stdout: Writable, stderr: Writable): Renderer {
  const skipReasons = new Map<string, number>();
  const out = (line: string) => stdout.write(`${printable(line)}\n`);
  const err = (line: string) => stderr.write(`${printable(line)}\n`);
  if (json) {
    return {
      event: (event) => out(JSON.stringify(event)),
      summary: (summary) => out(JSON.stringify(summary)),
    };
  }
  return {
    event: (event) => {
      switch (event.event) {
        case 'uploaded':
          return err(`✔ ${event.path} → ${event.entity_id} (${event.media_type ?? 'no media_type'}, ${formatBytes(event.bytes)})${event.possibly_duplicated ? ' possibly duplicated' : ''}`);
        case 'failed': {
          err(`✖ ${event.path} → ${event.entity_id}: ${event.status ?? 'no response'} ${event.error_code ?? ''} ${event.message}${event.possibly_duplicated ? ' (possibly stored by an earlier attempt)' : ''}`.replace(/ +/g, ' '));
          const hint = event.status === null ? undefined : STATUS_HINTS[event.status];
          return hint && err(`  hint: ${hint}`);
        }
        case 'retry':
          return err(`↻ ${event.path} → ${event.entity_id}: ${event.status ?? event.error_code} ${event.message}; retrying in ${(event.delay_ms / 1000).toFixed(1)} s (attempt ${event.attempt} failed)`.replace(/ +/g, ' '));
        case 'skipped':
          skipReasons.set(event.reason, (skipReasons.get(event.reason) ?? 0) + 1);
          if (QUIET_SKIPS.has(event.reason)) return;
          return err(`- skipped ${event.path} (${event.reason}: ${event.message})`);
        case 'warning':
          return err(`warning: ${event.message}`);
        case 'planned': {
          const type = event.media_type === null ? 'no media_type' : `${event.media_type} (from ${event.media_type_source.replace('_', ' ')})`;
          return out(`${event.path} → ${event.entity_id}  ${type}  ${formatBytes(event.bytes)}`);
        }
      }
    },
    summary: (summary) => out('dry_run' in summary ? dryRunLine(summary) : summaryLine(summary, skipReasons)),
  };
}

const STATUS_HINTS: Readonly<Record<number, string>> = {
  404: 'the entity may not exist yet, or be a placeholder (created implicitly by an event), which cannot take media',
  423: 'the entity is still being processed; try again in a few seconds',
};

const REASON_WORDS: Record<string, string> = {
  journal: 'already uploaded',
  duplicate: 'duplicate',
  unsupported: 'unsupported',
  invalid: 'invalid',
  not_sent: 'not sent',
};

function summaryLine(s: UploadSummary, skipReasons: ReadonlyMap<string, number>): string {
  const reasons = [...skipReasons].map(([reason, n]) => `${n} ${REASON_WORDS[reason] ?? reason}`).join(', ');
  const parts = [`${s.uploaded} uploaded`, `${s.failed} failed`, `${s.skipped} skipped${reasons ? ` (${reasons})` : ''}`];
  if (s.retries > 0) parts.push(`${s.retries} retries`);
  if (s.possibly_duplicated > 0) parts.push(`${s.possibly_duplicated} possibly duplicated (an attempt got no answer after sending; check those on the entity)`);
  return `${plural(s.total, 'file')}: ${parts.join(', ')}; ${formatBytes(s.bytes)} in ${formatDuration(s.duration_ms)}`;
}

function dryRunLine(s: DryRunSummary): string {
  const invalid = s.invalid > 0 ? ` (${s.invalid} invalid)` : '';
  return `Dry run: ${plural(s.planned, 'file')} (${formatBytes(s.bytes)}) would be uploaded, ${s.skipped} skipped${invalid}; nothing sent`;
}
