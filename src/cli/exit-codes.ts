import { CommanderError } from 'commander';
import { U21MediaError } from '../core/shared/errors.js';
import type { StopReason } from '../core/outcomes/events.js';

/** The exit codes of the command-line contract. */
export const EXIT = {
  ok: 0,
  someFailed: 1,
  badInput: 2,
  keyRefused: 3,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * How a command ended: the counts of its summary (an upload's or a dry run's, or a merged
 * report's), or the error it threw.
 */
export type Outcome =
  | {
      stopped?: StopReason;
      failed?: number;
      invalid?: number;
      link_outside?: number;
      unknown_outcome?: number;
      unreadable?: number;
      write_error?: unknown;
    }
  | { error: unknown };

/** The one mapping from how a command ended to its exit code, for every command. */
export function exitCodeOf(outcome: Outcome): ExitCode {
  if ('error' in outcome) {
    const { error } = outcome;
    // Help and version end through a CommanderError with code 0; usage errors through another.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    // Usage, config and input errors are found before anything is sent; any other (stdout that
    // cannot be written, a bug) is a failure.
    return error instanceof U21MediaError ? EXIT.badInput : EXIT.someFailed;
  }
  if (outcome.stopped === 'auth') return EXIT.keyRefused;
  if (outcome.stopped === 'interrupted') return EXIT.interrupted;
  if (outcome.stopped === 'certificate' || outcome.stopped === 'unreachable') return EXIT.someFailed;
  // Not clean until someone decides: failed files, invalid inputs skipped, links not followed,
  // files an earlier run sent without an answer, or a journal or report that was not written.
  const undecided = [
    outcome.failed,
    outcome.invalid,
    outcome.link_outside,
    outcome.unknown_outcome,
    outcome.unreadable,
  ].some((count) => (count ?? 0) > 0);
  return undecided || outcome.write_error !== undefined ? EXIT.someFailed : EXIT.ok;
}
