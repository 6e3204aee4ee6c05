import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Too few file descriptors (`ulimit -n`, EMFILE; or the system's table, ENFILE) is the
 * machine's limit, not the file's fault: an open that meets it waits for the run's other files
 * and connections to close theirs, and is tried again.
 */
export const isOutOfDescriptors = (error: unknown): boolean => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
};

/** How long an open waits for a descriptor before it gives up, naming the limit. */
export const DESCRIPTOR_WAIT_MS = 60_000;

/** Runs `open`, waiting out the limit on open files (up to DESCRIPTOR_WAIT_MS); then its error names the limit. */
export async function withDescriptor<T>(open: () => Promise<T>): Promise<T> {
  for (let waited = 0, delay = 5; ; waited += delay, delay = Math.min(2 * delay, 250)) {
    try {
      return await open();
    } catch (error) {
      if (!isOutOfDescriptors(error)) throw error;
      if (waited >= DESCRIPTOR_WAIT_MS) throw Object.assign(error as Error, { message: descriptorsMessage() });
      await sleep(delay);
    }
  }
}

/** What the limit is, in words: "the limit on open files (ulimit -n 40) left no descriptor for it within 60 s". */
export function descriptorsMessage(): string {
  return `the limit on open files${limitShown()} left no descriptor for it within ${DESCRIPTOR_WAIT_MS / 1000} s; raise it (ulimit -n 4096) or lower --concurrency, then run again`;
}

/** ` (ulimit -n 40)` where the system says, else nothing. */
export function limitShown(): string {
  const limit = openFilesLimit();
  return limit === undefined ? '' : ` (ulimit -n ${limit})`;
}

let limitOfThis: number | null | undefined;

/** The limit on open files, read once (later, with none to spare, the file that says it could not be opened); undefined where the system does not say. */
function openFilesLimit(): number | undefined {
  if (limitOfThis === undefined) {
    try {
      const soft = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
      limitOfThis = soft === undefined ? null : Number(soft);
    } catch {
      limitOfThis = null;
    }
  }
  return limitOfThis ?? undefined;
}

/** Descriptors kept for what is not a request (the journal, its index, the report, the run's tables), and each reader thread's own. */
const KEPT_BACK = 8;
const PER_READER_THREAD = 4;

/**
 * The requests a run can have in flight within the limit on open files: each holds a
 * connection and reads its files, two descriptors. A run under a limit too low for its
 * --concurrency (ulimit -n 40) sends fewer at once, rather than spend its time waiting.
 */
export function concurrencyWithin(concurrency: number, readerThreads: number): { concurrency: number; limit?: number } {
  const limit = openFilesLimit();
  let used: number;
  try {
    used = readdirSync('/proc/self/fd').length;
  } catch {
    return { concurrency };
  }
  if (limit === undefined) return { concurrency };
  const room = Math.floor((limit - used - KEPT_BACK - readerThreads * PER_READER_THREAD) / 2);
  return { concurrency: Math.max(1, Math.min(concurrency, room)), limit };
}
