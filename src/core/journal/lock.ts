import { hostname } from 'node:os';
import { UsageError } from '../shared/errors.js';
import { HeldLock, LockBusy, pidSpace, type Holder, type LockWait } from '../disk/held-lock.js';

/**
 * An exclusive hold on a journal for a run's whole life (see disk/held-lock.ts for how liveness is
 * decided): a second run on the journal is refused while the holder renews its lock, wherever
 * that holder runs; a lock left by a killed run is taken over, at once when it ran in this PID
 * namespace, else once it has gone unrenewed for a while.
 */
export const JournalLock = {
  /** `asker`: who wants the journal, as its messages name it; an upload's run by default. */
  async acquire(journalPath: string, options: JournalLockSettings = {}): Promise<HeldLock> {
    const asker = options.asker ?? AN_UPLOAD;
    try {
      return await HeldLock.acquire(journalPath, {
        ...(options.signal && { signal: options.signal }),
        onWait: (wait) => options.onWait?.(waitMessage(journalPath, wait)),
      });
    } catch (error) {
      if (error instanceof LockBusy) throw busy(journalPath, error.holder, asker);
      if ((error as Error).name === 'AbortError')
        throw new UsageError(
          `${asker.name}: interrupted while waiting for the lock of ${journalPath}`,
          'nothing was sent; run the same command again',
        );
      throw new UsageError(
        `${asker.name}: cannot lock ${journalPath} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        "the journal's folder must be writable: its lock goes beside it",
      );
    }
  },
};

/** For a run that reads the journal without its lock (a dry run): a warning when another run holds it now, else undefined. */
export async function inUseWarning(journalPath: string): Promise<string | undefined> {
  const held = await HeldLock.heldBy(journalPath);
  if (!held) return undefined;
  return `${journalPath} is in use by another run (${held.holder ? who(held.holder) : 'it is just starting'}): this plan reads it as it is now, the files that run is sending show as sent without an answer, and the real run would be refused until it ends`;
}

/** How a run waits for a journal's lock: told of the wait, stopped by `signal`, named in the messages as `asker`. */
export interface JournalLockSettings {
  onWait?: (message: string) => void;
  signal?: AbortSignal;
  asker?: Asker;
}

/** Who asks for a journal's lock: the name its errors start with, and what else it could do while another run holds it (options of its own command only). */
export interface Asker {
  name: string;
  otherwise: string;
}

const AN_UPLOAD: Asker = { name: '--journal', otherwise: 'or give another --journal (or --no-journal)' };

const who = (holder: Holder) => {
  const where =
    holder.pidSpace !== null && holder.pidSpace === pidSpace()
      ? 'on this machine'
      : holder.host === hostname()
        ? `on ${holder.host} (another container)`
        : `on ${holder.host}`;
  return `pid ${holder.pid} ${where}, since ${holder.started}`;
};

function busy(journalPath: string, holder: Holder | undefined, asker: Asker): UsageError {
  return new UsageError(
    `${asker.name}: ${journalPath} is in use by another run (${holder ? who(holder) : 'it is just starting'})`,
    `wait for that run to end, ${asker.otherwise}; a lock left by a killed run is taken over`,
  );
}

function waitMessage(journalPath: string, wait: LockWait): string {
  const holder = wait.holder ? ` by ${who(wait.holder)}` : '';
  return `${journalPath} is held${holder}, whose lock has not been renewed for ${Math.round(wait.silentForMs / 1000)} s; waiting up to ${Math.ceil(wait.waitMs / 1000)} s for it to go stale`;
}
