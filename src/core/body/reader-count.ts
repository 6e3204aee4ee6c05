import { availableParallelism } from 'node:os';
import { UsageError } from '../shared/errors.js';

/**
 * The most reader threads a run may have. Small files are read at most 32 files (and 32 MiB)
 * ahead of their turn (jobs.ts), so more threads would seldom all have work; and each thread
 * costs some 8 MB: 64 of them, all started at the first file, took 630 MB for a run of 10 files.
 */
const MAX_READER_THREADS = 16;

/**
 * Reader threads for one run: the library's `readerThreads`, else U21_READER_THREADS, else one
 * fewer than the cores, one to four. One core is left to the event loop (on two cores, a second
 * reader made a run 10% slower), and up to four give network storage several reads at a time.
 * A ceiling: threads start only as files wait for them (ReaderThreads).
 */
export function readerThreadCount(given: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const [origin, asked] =
    given !== undefined ? ['readerThreads', String(given)] : ['U21_READER_THREADS', env.U21_READER_THREADS];
  if (asked === undefined || asked === '') return Math.max(1, Math.min(4, availableParallelism() - 1));
  const count = Number(asked);
  if (!(Number.isInteger(count) && count >= 1 && count <= MAX_READER_THREADS)) {
    throw new UsageError(
      `${origin}: "${asked}" is not a thread count`,
      `give a whole number from 1 to ${MAX_READER_THREADS}, or leave it unset for the default`,
    );
  }
  return count;
}
