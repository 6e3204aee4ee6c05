import type { Ora } from 'ora';
import type {
  CheckProgress,
  DryRunSummary,
  PlanEvent,
  UploadEvent,
  UploadSummary,
} from '../../core/outcomes/events.js';
import { OBJECT_NAME } from '../../core/inputs/route.js';
import type { LinkedObject } from '../../core/inputs/objects.js';
import { shellWord } from '../command-line.js';
import { count, formatBytes, formatDuration, perSecond, plural, unansweredCase } from '../format.js';
import { joinDistinct } from '../../core/shared/join-distinct.js';
import type { Renderer, RenderOptions, RunFiles } from './renderer.js';
import { Progress } from './progress.js';
import { shown } from '../../core/shared/safe-text.js';
import { chalkFor, colorLevel } from './style.js';

// A CI log gets a progress line this often at most.
const CI_PROGRESS_MS = 5_000;
const SPINNER_REFRESH_MS = 100;

// Expected in bulk on a resumed or stopped run: counted in the summary, listed only with --verbose.
const QUIET_SKIPS = new Set(['journal', 'not_sent']);

// Reasons not listed here are shown as they are.
const REASON_WORDS: Record<string, string> = {
  journal: 'already uploaded',
  not_sent: 'not sent',
  link_outside: 'links out of the folder',
  unknown_outcome: 'sent before without an answer',
};

// Failures alike in status, error_code and message are listed this many times, then counted.
const SAME_FAILURES_LISTED = 3;

/** Where an event's file goes, as a reader says it: `cust-42`, or `alert 9001`. */
const to = (e: { entity_id: string; object?: LinkedObject }) =>
  e.object ? `${OBJECT_NAME[e.object]} ${e.entity_id}` : e.entity_id;

// Files sent without an answer are named in the summary up to this many of each case, then counted.
const NAMED_UNANSWERED = 5;

/** Files counted, the first few kept by name: "a.pdf, b.pdf and 7 more". */
class Named {
  count = 0;
  private readonly first: string[] = [];

  note(path: string): void {
    if (this.count++ < NAMED_UNANSWERED) this.first.push(path);
  }

  get all(): boolean {
    return this.count <= NAMED_UNANSWERED;
  }

  toString(): string {
    return `${this.first.join(', ')}${this.all ? '' : ` and ${this.count - NAMED_UNANSWERED} more`}`;
  }
}

const STATUS_HINTS: Readonly<Record<number, string>> = {
  404: 'the entity may not exist yet, or be a placeholder (created implicitly by an event), which cannot take media',
  423: 'the entity is still being processed; try again in a few seconds',
};

/**
 * Lines for people: on a terminal, a spinner with live counts (ora keeps it below other
 * output); off a terminal, plain lines and a progress line every few seconds. Failures,
 * warnings and skips go to stderr, the summary to stdout.
 */
export async function createHumanRenderer(options: RenderOptions): Promise<Renderer> {
  // ora is loaded only for a terminal with a width: logs and pipes never draw a spinner.
  const ora =
    options.stderr.isTTY && options.stderr.spinnerStream.columns && !options.quiet
      ? (await import('ora')).default
      : undefined;
  const { stdout, stderr, quiet, verbose } = options;
  const err = chalkFor(colorLevel(stderr, options.env, options.color));
  const out = chalkFor(colorLevel(stdout, options.env, options.color));
  // Names and messages are made safe by the output before colour is added around them.
  const errLine = (text: string, paint: (t: string) => string = String) => stderr.line(text, paint);
  const outLine = (text: string) => stdout.line(text);

  const progress = new Progress(Date.now);
  // Files sent without an answer (flagged possibly_duplicated), named in the summary by what each may have left.
  const unanswered = { failed: new Named(), uploaded: new Named() };
  const hinted = new Set<number>();
  // A dead host or a bad CA fails every file alike: a few lines say it, a count says the rest.
  const alike = new Map<string, { error: string; count: number }>();
  let spinner: Ora | undefined;
  let timer: NodeJS.Timeout | undefined;
  const startProgress = () => {
    if (quiet || timer) return;
    // A terminal that reports no width would make ora redraw forever: it is treated as a log.
    if (ora) {
      spinner = ora({
        stream: stderr.spinnerStream,
        discardStdin: false,
        color: err.level > 0 ? 'cyan' : false,
        isEnabled: true,
      }).start(shown(progress.statusLine()));
      timer = setInterval(() => spinner && (spinner.text = shown(progress.statusLine())), SPINNER_REFRESH_MS);
    } else {
      timer = setInterval(() => errLine(progress.ciLine()), CI_PROGRESS_MS);
    }
    timer.unref();
  };
  const close = () => {
    clearInterval(timer);
    spinner?.stop();
    spinner = undefined;
  };

  const event = (e: UploadEvent | PlanEvent) => {
    stdout.check();
    progress.note(e);
    switch (e.event) {
      case 'planned': {
        if (quiet) return; // the plan's summary says how many
        const type =
          e.media_type === null ? 'no media_type' : `${e.media_type} (from ${e.media_type_source.replace('_', ' ')})`;
        const detected = e.detected === null ? '' : `  ${e.detected}`;
        const fix = e.fix
          ? `  will ${e.fix.join(', ').replace('strip_location', 'strip location')}${e.sent_name ? ` → ${e.sent_name}` : ''}`
          : '';
        const again = e.possibly_duplicated ? '  sent again: an earlier run sent it and got no answer' : '';
        return outLine(`${e.path} → ${to(e)}  ${type}  ${formatBytes(e.bytes)}${detected}${fix}${again}`);
      }
      case 'failed': {
        if (e.possibly_duplicated) unanswered.failed.note(e.path);
        // Without a status, the code and message say what happened (timeout, a reset, a file that changed).
        const error = joinDistinct([e.status, e.error_code, e.message]);
        const group = alike.get(error) ?? { error, count: 0 };
        alike.set(error, group);
        if (++group.count > SAME_FAILURES_LISTED) return;
        // Also after a single attempt (--retries 0), or one by an earlier run: it went out, no answer came.
        const dup = e.possibly_duplicated ? ` (${unansweredCase('failed')})` : '';
        errLine(`✖ ${e.path} → ${to(e)}: ${error}${dup}`, err.red);
        // Each hint once: a missing entity fails all its files the same way.
        const hint = e.status === null || hinted.has(e.status) ? undefined : STATUS_HINTS[e.status];
        if (hint) hinted.add(e.status!);
        return hint && errLine(`  hint: ${hint}`, err.dim);
      }
      case 'warning': {
        // The input it was found in, as a problem names it: `manifest.csv:7: …`.
        const place = e.path === undefined ? '' : `${e.path}${e.line === undefined ? '' : `:${e.line}`}: `;
        return !quiet && errLine(`⚠ ${place}${e.message}`, err.yellow);
      }
      case 'skipped':
        // An invalid input (--skip-invalid) is a problem, said also with --quiet.
        return (
          (e.reason === 'invalid' || (!quiet && (verbose || !QUIET_SKIPS.has(e.reason)))) &&
          errLine(`- skipped ${e.path} (${e.reason}: ${e.message})`, err.dim)
        );
      case 'retry':
        return (
          verbose &&
          errLine(
            `↻ ${e.path} → ${to(e)}: ${joinDistinct([e.status ?? e.error_code, e.message])}; retry in ${(e.delay_ms / 1000).toFixed(1)} s`,
            err.yellow,
          )
        );
      case 'attempt':
        startProgress();
        return verbose && errLine(`→ ${e.path} → ${to(e)} (attempt ${e.attempt})`, err.dim);
      case 'uploaded':
        if (e.possibly_duplicated) unanswered.uploaded.note(e.path);
        return (
          verbose &&
          errLine(
            `✔ ${e.path} → ${to(e)} (${e.media_type ?? 'no media_type'}, ${formatBytes(e.bytes)})${e.possibly_duplicated ? ` (${unansweredCase('uploaded')})` : ''}`,
            err.green,
          )
        );
    }
  };

  const summary = (s: UploadSummary | DryRunSummary, files: RunFiles = {}) => {
    close();
    for (const { error, count: times } of alike.values()) {
      if (times > SAME_FAILURES_LISTED)
        errLine(`… and ${count(times - SAME_FAILURES_LISTED)} more failed with the same error (${error})`, err.red);
    }
    const detail = (label: string, text: string) =>
      stdout.line(text, (safe) => `  ${out.dim(label.padEnd(20))}${safe}`);
    const skipped = () =>
      s.skipped > 0 &&
      detail(
        'skipped',
        `${count(s.skipped)}: ${[...progress.skipReasons].map(([r, n]) => `${count(n)} ${REASON_WORDS[r] ?? r}`).join(', ')}`,
      );
    if ('dry_run' in s) {
      const invalid = s.invalid > 0 ? ` (${count(s.invalid)} invalid)` : '';
      const unreadable = s.unreadable > 0 ? `, ${count(s.unreadable)} would fail (unreadable)` : '';
      outLine(
        `Dry run${s.shard ? ` (shard ${s.shard})` : ''}: ${plural(s.planned, 'file')} (${formatBytes(s.bytes)}) would be uploaded, ${count(s.skipped)} skipped${invalid}${unreadable}; nothing sent`,
      );
      skipped();
      return;
    }
    if (s.stopped === 'interrupted' && s.total === 0)
      return stdout.line(
        `interrupted during the check${checkedSoFar()}: nothing was sent`,
        (safe) => `${out.red('✖')} ${safe}`,
      );
    const sent = s.uploaded + s.failed;
    // The rate of uploads: "0 of 10 uploaded, 2 failed … 7 files/s" would read as progress.
    const rate = s.duration_ms > 0 && s.uploaded > 0 ? `, ${perSecond(s.uploaded, s.duration_ms)}` : '';
    const ok =
      s.failed === 0 &&
      !s.stopped &&
      s.invalid === 0 &&
      s.link_outside === 0 &&
      s.unknown_outcome === 0 &&
      !s.write_error;
    const shard = s.shard ? `shard ${s.shard}: ` : '';
    const head =
      ok && sent === 0
        ? `${shard}nothing to send: all ${plural(s.total, 'file')} skipped`
        : `${shard}${count(s.uploaded)} of ${plural(s.total, 'file')} uploaded${s.failed ? `, ${count(s.failed)} failed` : ''} (${formatBytes(s.bytes)}) in ${formatDuration(s.duration_ms)}${rate}`;
    const symbol = ok ? out.green('✔') : s.failed || s.stopped ? out.red('✖') : out.yellow('⚠');
    stdout.line(head, (safe) => `${symbol} ${safe}`);
    skipped();
    if (s.retries > 0) detail('retries', count(s.retries));
    if (s.split > 0)
      detail('split', `${plural(s.split, 'request')} of several files refused with HTTP 400, sent again file by file`);
    if (s.possibly_duplicated > 0) {
      // Each case says what may be on the entity; the files are named, and all of them listed by the journal.
      const { failed, uploaded } = unanswered;
      if (failed.count > 0)
        detail(
          'may be stored',
          `${plural(failed.count, 'failed file')} sent without an answer may be on the entity anyway: ${String(failed)}`,
        );
      if (uploaded.count > 0)
        detail(
          'may be stored twice',
          `${plural(uploaded.count, 'uploaded file')} had an earlier attempt sent without an answer: ${String(uploaded)}`,
        );
      const listing = files.journal
        ? `u21-media journal show ${shellWord(files.journal)} --run ${s.run_id} --possibly-duplicated`
        : files.report
          ? `the rows of ${files.report} with possibly_duplicated true`
          : undefined;
      if (listing && !(failed.all && uploaded.all)) detail('list them all', listing);
    }
    if (files.report) detail('report', files.report);
    if (files.journal) detail('journal', files.journal);
    if (files.journal && sent === 0 && progress.skipReasons.has('journal')) {
      detail('', 'stored by an earlier run: `u21-media journal forget` (or --no-journal) sends them again');
    }
  };

  /** `, after checking 3,200 of 10,000 files`, as far as the check was seen. */
  const checkedSoFar = () => {
    if (!progress.check) return '';
    const { checked, total } = progress.check;
    return `, after checking ${total === undefined ? plural(checked, 'file') : `${count(checked)} of ${plural(total, 'file')}`}`;
  };

  return {
    event,
    total: (n) => {
      progress.total = n;
    },
    // With --quiet nothing is drawn: no check progress is asked for (it costs a second listing).
    ...(!quiet && {
      check: (p: CheckProgress) => {
        progress.check = p;
        startProgress();
      },
    }),
    summary,
    close,
  };
}
