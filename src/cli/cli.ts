import { CommanderError } from 'commander';
import { InputError, SetupError, U21MediaError, type Problem } from '../core/shared/errors.js';
import { emptyDryRun, emptyTally } from '../core/outcomes/events.js';
import { EXIT, exitCodeOf } from './exit-codes.js';
import { plural } from './format.js';
import { joinDistinct } from '../core/shared/join-distinct.js';
import type { Io, OutputMode } from './io.js';
import { Output, OutputError, type Stream } from './output.js';
import { createProgram } from './program.js';
import { typesText } from './types-command.js';
import { readVersion } from './version.js';

/** The streams, environment and folder the CLI runs with: the process's own, or a test's. */
export interface Streams {
  stdout: Stream;
  stderr: Stream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Runs the CLI with the given arguments (without node and script) and returns the exit code. */
export async function run(args: readonly string[], streams: Streams): Promise<number> {
  // Every command writes through these two alone: what leaves the program is made safe there.
  const io: Io = {
    out: new Output('stdout', streams.stdout),
    err: new Output('stderr', streams.stderr),
    env: streams.env,
    cwd: streams.cwd,
  };
  const code = await runCommand(args, io);
  io.out.flush();
  // A write's failure is told a moment after the write.
  await new Promise((resolve) => setImmediate(resolve));
  return outputFailed(io, code);
}

/** A command whose results could not all be written (stdout on a full disk) did not end cleanly, and says so on stderr. */
function outputFailed(io: Io, code: number): number {
  const failure = io.out.failure;
  if (!failure || code !== EXIT.ok) return code;
  io.err.line(
    `u21-media: error: cannot write stdout (${failure.code ?? 'EIO'}); what the command printed there is incomplete`,
  );
  return EXIT.someFailed;
}

async function runCommand(args: readonly string[], io: Io): Promise<number> {
  let exitCode: number = EXIT.ok;
  // Until the settings say otherwise (a config file may ask for JSON), what the arguments say.
  const mode: OutputMode = { json: args.includes('--json'), dryRun: args.includes('--dry-run') };
  const program = createProgram(
    readVersion(),
    {
      upload: async (paths, flags) => (await import('./upload-command.js')).runUpload(paths, flags, io, mode, args),
      reportMerge: async (files, output) => (await import('./report-command.js')).runReportMerge(files, output, io),
      journal: async (action, file, flags) => {
        const command = await import('./journal-command.js');
        return action === 'list'
          ? command.runJournalList(io)
          : action === 'show'
            ? command.runJournalShow(file, flags, io)
            : command.runJournalForget(file, flags, io);
      },
      sandbox: async (flags) => (await import('./sandbox-command.js')).runSandbox(flags, io),
      types: () => {
        io.out.lines(typesText());
        return Promise.resolve(EXIT.ok);
      },
    },
    (code) => (exitCode = code),
    { writeOut: (text) => io.out.lines(text), writeErr: (text) => io.err.lines(text) },
  );
  try {
    await program.parseAsync([...args], { from: 'user' });
    return exitCode;
  } catch (error) {
    const code = reportError(error, io);
    if (mode.json && code === EXIT.badInput) writeErrorEvents(error, mode, io);
    return code;
  }
}

/** The one place that turns errors into messages; their exit code comes from exitCodeOf. */
function reportError(error: unknown, io: Io): number {
  const say = (e: U21MediaError) => {
    io.err.line(`u21-media: error: ${e.message}`);
    if (e.hint) io.err.line(`  hint: ${e.hint}`);
  };
  if (error instanceof CommanderError) {
    // Help and version exit through here; usage errors are already printed.
  } else if (error instanceof InputError) {
    for (const line of problemLines(error.problems)) io.err.line(line);
    io.err.line(`u21-media: error: ${plural(error.problems.length, 'invalid input')}; nothing was sent`);
    io.err.line(`  hint: ${error.hint}`);
  } else if (error instanceof SetupError) {
    error.errors.forEach(say);
    io.err.line(`u21-media: ${error.errors.length} problems to fix before anything can be sent`);
  } else if (error instanceof U21MediaError) {
    say(error);
  } else if (error instanceof OutputError) {
    io.err.line(
      `u21-media: error: cannot write ${error.path} (${joinDistinct([error.code, error.message], ': ')}); the command stopped`,
    );
  } else {
    const err = error as Error;
    io.err.lines(
      `u21-media: unexpected error: ${err.stack ?? String(err)}\n  This is a bug in u21-media; please report it with the command you ran and this output.\n`,
    );
  }
  return exitCodeOf({ error });
}

/** Lines shown of one kind of problem before the rest are counted: 300 empty files are one problem, not 300 lines. */
const SHOWN_PER_PROBLEM = 3;

/** One line per problem, identical messages after the first few grouped into a count. */
function problemLines(problems: readonly Problem[]): string[] {
  const byMessage = new Map<string, Problem[]>();
  for (const p of problems) {
    const group = byMessage.get(p.message);
    if (group) group.push(p);
    else byMessage.set(p.message, [p]);
  }
  return [...byMessage].flatMap(([message, group]) => [
    ...group.slice(0, SHOWN_PER_PROBLEM).map((p) => `✖ ${p.path}: ${message}`),
    ...(group.length > SHOWN_PER_PROBLEM ? [`  … and ${group.length - SHOWN_PER_PROBLEM} more: ${message}`] : []),
  ]);
}

/** With --json, a run refused before sending still ends in an `error` event and a summary on stdout, for scripts. */
function writeErrorEvents(error: unknown, mode: OutputMode, io: Io): void {
  const described = (e: U21MediaError) => ({ message: e.message, ...(e.hint && { hint: e.hint }) });
  const problems =
    error instanceof InputError
      ? error.problems.map((p) => ({ path: p.path, message: p.message }))
      : error instanceof SetupError
        ? error.errors.map(described)
        : error instanceof U21MediaError
          ? [described(error)]
          : [{ message: (error as Error).message.replace(/^error: /, '') }];
  // Refused inputs are counted, so the summary agrees with the error before it: every file was left unsent.
  const invalid = error instanceof InputError ? error.problems.length : 0;
  const unsent = error instanceof InputError ? invalid + error.validFiles : 0;
  const summary = mode.dryRun
    ? { ...emptyDryRun(), invalid }
    : { event: 'summary', total: unsent, ...emptyTally(), invalid, not_sent: unsent, duration_ms: 0 };
  io.out.json({ event: 'error', code: EXIT.badInput, problems });
  io.out.json(summary);
}
