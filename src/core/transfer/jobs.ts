import { checkedFile, fitsWhole } from '../body/request-body.js';
import type { BodyReader, WholeFile } from '../body/reader-threads.js';
import { eventOf } from '../outcomes/events.js';
import type { Journal } from '../journal/journal.js';
import { known, type Checked, type PlannedFile } from '../inputs/plan.js';
import { batches } from './batches.js';
import { TableWriteError } from '../disk/disk-table.js';
import type { Fixer } from '../convert/fixer.js';
import { ReencodeError } from '../convert/reencode-error.js';
import { unknownOutcomeMessage, type RepeatFilter } from './dedupe.js';
import { type Job, type Outcomes } from './outcomes.js';
import { readAhead } from './read-ahead.js';

/** Files read whole ahead of their turn: up to 32 of them and 32 MiB (about 43 MiB as JSON). */
const READ_AHEAD = { items: 32, weight: 32 * 1024 * 1024 };

/**
 * The checked inputs as requests to send. Everything else in the stream (skips, warnings,
 * repeats, what an earlier run left unknown) is told on the way. A small file is read whole
 * ahead of its turn, by a reader thread, once: for its duplicate check and for its body.
 */
export function jobsOf(
  items: AsyncIterable<Checked>,
  parts: { outcomes: Outcomes; repeats: RepeatFilter; reader: BodyReader; fixer?: Fixer },
  settings: { batch: number; resendUnknown: boolean; journal?: Journal; format: 'multipart' | 'json' },
): AsyncGenerator<Job> {
  const { outcomes, repeats, reader, fixer } = parts;
  /** Files read whole ahead of their turn, as they go out. */
  const reads = new Map<PlannedFile, Promise<WholeFile>>();
  /** Files duplicate detection could no longer read, with the error it met. */
  const unreadableFiles = new Map<PlannedFile, NodeJS.ErrnoException>();

  /** Starts reading a small file whole; says how many bytes it will hold. A file to change is read once changed (if it is sent). */
  const readEarly = (item: Checked): number => {
    if (item.kind !== 'file' || item.file.fix || !fitsWhole([item.file]) || outcomes.tally.stopped) return 0;
    // An object the journal records as sent is skipped unread.
    if (repeats.recorded(item.file)) return 0;
    const read = reader.read(checkedFile(item.file), settings.format === 'json');
    read.catch(() => {}); // its failure is met when the file is checked or sent
    reads.set(item.file, read);
    return item.file.bytes;
  };

  /** A file read ahead that is not sent: its memory goes back to the reader. */
  const forget = (file: PlannedFile) => {
    reads.get(file)?.then(
      (read) => reader.recycle(read.bytes),
      () => {},
    );
    reads.delete(file);
  };

  async function* sendable(): AsyncGenerator<PlannedFile> {
    for await (const item of readAhead(items, READ_AHEAD, readEarly)) {
      if (item.kind !== 'file') {
        const event = eventOf(item);
        if (event.event === 'warning') outcomes.event(event);
        else outcomes.skip(event);
        continue;
      }
      const { file } = item;
      if (outcomes.tally.stopped) {
        forget(file);
        outcomes.notSent(file);
        continue;
      }
      let verdict;
      try {
        verdict = await repeats.check(file, reads.get(file));
      } catch (error) {
        // Duplicate detection's tables could not be written (a full $TMPDIR): the run stops like one whose journal cannot be written.
        if (!(error instanceof TableWriteError)) throw error;
        forget(file);
        outcomes.writeFailed(error, file);
        continue;
      }
      // Sent on like the others, to fail in its turn: requests are read ahead, and with
      // --fail-fast, this failure must not stop the files before it.
      if ('unreadable' in verdict) {
        unreadableFiles.set(file, Object.assign(verdict.unreadable, { path: file.absPath }));
        yield file;
        continue;
      }
      if (verdict.skip) {
        forget(file);
        outcomes.skip(
          {
            event: 'skipped',
            path: file.path,
            reason: verdict.skip,
            message: verdict.message,
            ...known(file),
            sha256: verdict.sha256,
          },
          file,
        );
      } else if ('unknownOutcome' in verdict && !settings.resendUnknown) {
        forget(file);
        outcomes.skip(
          {
            event: 'skipped',
            path: file.path,
            reason: 'unknown_outcome',
            message: unknownOutcomeMessage(settings.journal!.path),
            ...known(file),
            sha256: verdict.sha256,
          },
          file,
        );
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
      const [errorCode, message] =
        err instanceof ReencodeError
          ? ['not_converted', err.message]
          : err.code === 'file_changed'
            ? ['file_changed', err.message]
            : [err.code ?? 'read_error', `cannot read it (${err.message})`];
      outcomes.failed({ files: [file], attempts: 0, possiblyDuplicated: false }, { status: null, errorCode, message });
      return undefined;
    }
  }

  async function* jobs(): AsyncGenerator<Job> {
    for await (const files of batches(sendable(), settings.batch)) {
      const job: Job = { files, attempts: 0, possiblyDuplicated: false };
      const unreadable = files.find((file) => unreadableFiles.has(file));
      if (unreadable) job.unreadable = unreadableFiles.get(unreadable)!;
      // A request too large to go whole streams its files (as its body builder decides, by the same rule): what was read of them ahead goes back.
      else if (fitsWhole(files) && files.some((file) => reads.has(file)))
        job.reads = files.map((file) => reads.get(file));
      for (const file of files) {
        if (!job.reads) forget(file);
        reads.delete(file);
        unreadableFiles.delete(file);
      }
      yield job;
    }
  }

  return jobs();
}
