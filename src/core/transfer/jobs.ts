import { fitsWhole, type BodyBuilder } from '../body/request-body.js';
import type { BodyReader } from '../body/reader-threads.js';
import { eventOf } from '../events.js';
import type { Journal } from '../journal.js';
import type { Checked, PlannedFile } from '../plan.js';
import { batches } from './batches.js';
import { TableWriteError } from '../disk-table.js';
import type { Fixer } from '../convert/fixer.js';
import { ReencodeError } from '../convert/reencode-error.js';
import type { RepeatFilter } from './dedupe.js';
import { known, type Job, type Outcomes } from './outcomes.js';
import { readAhead } from './read-ahead.js';

/** Small requests read ahead of their turn: up to 16 MiB of files (about 22 MiB as JSON). */
const READ_AHEAD = 16;

/**
 * The checked inputs as requests to send. Everything else in the stream (skips, warnings,
 * repeats, what an earlier run left unknown) is told on the way; a small request's body is
 * read ahead of its turn.
 */
export function jobsOf(
  items: AsyncIterable<Checked>,
  parts: { outcomes: Outcomes; repeats: RepeatFilter; buildBody: BodyBuilder; reader: BodyReader; fixer?: Fixer },
  settings: { batch: number; resendUnknown: boolean; journal?: Journal },
): AsyncGenerator<Job> {
  const { outcomes, repeats, buildBody, reader, fixer } = parts;
  /** Files duplicate detection could no longer read, with the error it met. */
  const unreadableFiles = new Map<PlannedFile, NodeJS.ErrnoException>();

  async function* sendable(): AsyncGenerator<PlannedFile> {
    for await (const item of items) {
      if (item.kind !== 'file') {
        const event = eventOf(item);
        if (event.event === 'warning') outcomes.event(event);
        else outcomes.skip(event);
        continue;
      }
      const { file } = item;
      if (outcomes.tally.stopped) {
        outcomes.notSent(file);
        continue;
      }
      let verdict;
      try {
        verdict = await repeats.check(file);
      } catch (error) {
        // Duplicate detection's tables could not be written (a full $TMPDIR): the run stops like one whose journal cannot be written.
        if (!(error instanceof TableWriteError)) throw error;
        outcomes.writeFailed(error, file);
        continue;
      }
      // Sent on like the others, to fail in its turn: requests are read ahead, and with
      // --fail-fast, this failure must not stop the files before it.
      if ('unreadable' in verdict) {
        unreadableFiles.set(file, Object.assign(verdict.unreadable, { path: file.absPath }));
        yield file;
      } else if (verdict.skip) outcomes.skip({ event: 'skipped', path: file.path, reason: verdict.skip, message: verdict.message, ...known(file), sha256: verdict.sha256 }, file);
      else if ('unknownOutcome' in verdict && !settings.resendUnknown) {
        const message = `an earlier run sent it and got no answer (${settings.journal!.path}); it may be on the entity already: check, then send it without --no-resend-unknown`;
        outcomes.skip({ event: 'skipped', path: file.path, reason: 'unknown_outcome', message, ...known(file), sha256: verdict.sha256 }, file);
      } else {
        // Changed only once it is known to be sent: a rerun's journal skip costs no conversion.
        const sent = await fixed(file);
        if (!sent) continue;
        if ('unknownOutcome' in verdict) outcomes.sentBefore.add(sent);
        yield sent;
      }
    }
  }

  /** The file as it is sent (--convert, --fit, --strip-location), or undefined when it could not be made so: it failed. */
  async function fixed(file: PlannedFile): Promise<PlannedFile | undefined> {
    if (!file.fix || !fixer) return file;
    try {
      return await fixer.fix(file);
    } catch (error) {
      if (error instanceof TableWriteError) {
        outcomes.writeFailed(error, file);
        return undefined;
      }
      const err = error as NodeJS.ErrnoException;
      const [errorCode, message] = err instanceof ReencodeError ? ['not_converted', err.message] : err.code === 'file_changed' ? ['file_changed', err.message] : [err.code ?? 'read_error', `cannot read it (${err.message})`];
      outcomes.failed({ files: [file], attempts: 0, possiblyDuplicated: false }, { status: null, errorCode, message });
      return undefined;
    }
  }

  async function* jobs(): AsyncGenerator<Job> {
    for await (const files of batches(sendable(), settings.batch)) yield { files, attempts: 0, possiblyDuplicated: false };
  }

  return readAhead(jobs(), READ_AHEAD, (job) => {
    const unreadable = job.files.find((file) => unreadableFiles.has(file));
    if (unreadable) job.prepared = Promise.reject(unreadableFiles.get(unreadable)!);
    // A larger request streams its files, and would hold them open until its turn.
    else if (fitsWhole(job.files) && !outcomes.tally.stopped) job.prepared = buildBody(job.files, reader);
    for (const file of job.files) unreadableFiles.delete(file);
    job.prepared?.catch(() => {}); // its failure is met when the job is handled
  });
}
