import { CommanderError } from 'commander';
import { InputError, U21MediaError } from '../core/errors.js';
import { EXIT, exitCodeOf } from './exit-codes.js';
import type { Io } from './io.js';
import { createProgram } from './program.js';
import { typesText } from './types-command.js';
import { readVersion } from './version.js';


/** Runs the CLI with the given arguments (without node and script) and returns the exit code. */
export async function run(args: readonly string[], io: Io): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = createProgram(
    readVersion(),
    {
      upload: async (paths, flags) => (await import('./upload-command.js')).runUpload(paths, flags, io),
      reportMerge: async (files, output) => (await import('./report-command.js')).runReportMerge(files, output, io),
      sandbox: async (flags) => (await import('./sandbox-command.js')).runSandbox(flags, io),
      types: () => {
        io.stdout.write(typesText());
        return Promise.resolve(EXIT.ok);
      },
    },
    (code) => (exitCode = code),
    { writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) },
  );
  try {
    await program.parseAsync([...args], { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(error, io);
  }
}

/** The one place that turns errors into messages; their exit code comes from exitCodeOf. */
function reportError(error: unknown, io: Io): number {
  if (error instanceof CommanderError) {
    // Help and version exit through here; usage errors are already printed.
  } else if (error instanceof InputError) {
    for (const p of error.problems) io.stderr.write(`✖ ${p.path}: ${p.message}\n`);
    io.stderr.write(`u21-media: error: ${error.problems.length} invalid input${error.problems.length === 1 ? '' : 's'}; nothing was sent\n  hint: ${error.hint}\n`);
  } else if (error instanceof U21MediaError) {
    io.stderr.write(`u21-media: error: ${error.message}\n${error.hint ? `  hint: ${error.hint}\n` : ''}`);
  } else {
    const err = error as Error;
    io.stderr.write(`u21-media: unexpected error: ${err.stack ?? String(err)}\n  This is a bug in u21-media; please report it with the command you ran and this output.\n`);
  }
  return exitCodeOf({ error });
}
