import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { readReport, writeReport, type ReportRow } from '../core/report.js';
import { exitCodeOf } from './exit-codes.js';
import { count, plural } from './format.js';
import type { Io } from './io.js';

/** `u21-media report merge`: shard reports into one, with totals, for the audit trail. */
export async function runReportMerge(files: string[], output: string | undefined, io: Io): Promise<number> {
  const rows: ReportRow[] = [];
  for (const file of files) {
    try {
      rows.push(...(await readReport(resolve(io.cwd, file))));
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      throw new UsageError(`${file}: cannot read it as a report (${err.code ?? err.message})`, 'give .json or .csv files written by --report');
    }
  }
  const withOutcome = (outcome: ReportRow['outcome']) => rows.filter((r) => r.outcome === outcome).length;
  const totals = `${plural(rows.length, 'file')} from ${plural(files.length, 'report')}: ${count(withOutcome('uploaded'))} uploaded, ${count(withOutcome('failed'))} failed, ${count(withOutcome('skipped'))} skipped`;
  if (output) {
    await writeReport(resolve(io.cwd, output), rows);
    io.out.line(totals);
    io.out.line(`written to ${output}`);
  } else {
    io.out.json(rows);
    io.err.line(totals);
  }
  return exitCodeOf({ failed: withOutcome('failed') });
}
