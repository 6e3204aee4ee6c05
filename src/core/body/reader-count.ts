import { availableParallelism } from 'node:os';
import { UsageError } from '../errors.js';

/**
 * Reader threads for one run: the library's `readerThreads`, else U21_READER_THREADS, else one
 * fewer than the cores, one to four. One core is left to the event loop (on two cores, a second
 * reader made a run 10% slower), and up to four give network storage several reads at a time.
 */
export function readerThreadCount(given: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const [origin, asked] = given !== undefined ? ['readerThreads', String(given)] : ['U21_READER_THREADS', env.U21_READER_THREADS];
  if (asked === undefined || asked === '') return Math.max(1, Math.min(4, availableParallelism() - 1));
  const count = Number(asked);
  if (!(Number.isInteger(count) && count >= 1 && count <= 64)) {
    throw new UsageError(`${origin}: "${asked}" is not a thread count`, 'give a whole number from 1 to 64, or leave it unset for the default');
  }
  return count;
}
