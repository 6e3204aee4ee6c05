import { resolve } from 'node:path';
import { UsageError } from '../core/shared/errors.js';
import { lastOutcomes, writeReport } from '../core/outcomes/report.js';
import { isRetryable, isUndecided, readReport, type ReportRow } from '../core/inputs/report-format.js';
import { shellWord } from './command-line.js';
import { exitCodeOf } from './exit-codes.js';
import { count, plural } from './format.js';
import type { Io } from './io.js';

/**
 * `u21-media report merge`: shard reports, or a run's report and its retries', into one with
 * each file's last outcome, and totals that say what is still to do.
 */
export async function runReportMerge(files: string[], output: string | undefined, io: Io): Promise<number> {
  const reports: ReportRow[][] = [];
  for (const file of files) {
    try {
      reports.push(await readReport(resolve(io.cwd, file)));
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      throw new UsageError(
        `${file}: cannot read it as a report (${err.code ?? err.message})`,
        'give .json or .csv files written by --report',
      );
    }
  }
  const { rows, replaced } = lastOutcomes(reports);
  const withOutcome = (outcome: ReportRow['outcome']) => rows.filter((r) => r.outcome === outcome).length;
  const toDo = rows.filter(isRetryable);
  const failed = withOutcome('failed');
  const replacedNote = replaced > 0 ? ` (the last outcome of each: ${plural(replaced, 'earlier row')} replaced)` : '';
  const left =
    toDo.length === 0
      ? 'nothing left to do'
      : `still to do: ${count(toDo.length)} (${[failed && `${count(failed)} failed`, toDo.length - failed && `${count(toDo.length - failed)} not sent`].filter(Boolean).join(', ')})`;
  const undecided = rows.filter(isUndecided).length;
  const toCheck =
    undecided > 0 ? `; to check: ${count(undecided)} (skipped as unknown_outcome, invalid or link_outside)` : '';
  const totals = `${plural(rows.length, 'file')} from ${plural(files.length, 'report')}: ${count(withOutcome('uploaded'))} uploaded, ${count(failed)} failed, ${count(withOutcome('skipped'))} skipped${replacedNote}; ${left}${toCheck}`;
  if (output) {
    await writeReport(resolve(io.cwd, output), rows);
    io.out.line(totals);
    io.out.line(`written to ${output}`);
    if (toDo.length > 0)
      io.out.line(
        `to send what is still to do: u21-media upload --retry-failed ${shellWord(output)}, with the runs' --org and --env (or --base-url)`,
      );
  } else {
    io.out.json(rows);
    io.err.line(totals);
  }
  // A file not sent is as undone as a failed one; one skipped for someone to decide ends as the run that skipped it did.
  return exitCodeOf({ failed: toDo.length + undecided });
}
