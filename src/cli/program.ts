import { Command, Option, type OutputConfiguration } from 'commander';
import { UPLOAD_OPTIONS } from './options.js';

/** Handlers the program calls; each returns an exit code. */
export interface Actions {
  upload(paths: string[], flags: Record<string, unknown>): Promise<number>;
  types(): Promise<number>;
}

/** A fresh commander program (no global state), wired to the given actions. */
export function createProgram(
  version: string,
  actions: Actions,
  setExitCode: (code: number) => void,
  output: OutputConfiguration,
): Command {
  // Set before adding commands: subcommands inherit these settings when created.
  const program = new Command('u21-media')
    .description('Upload ID scans, selfies, PDFs and videos to Unit21 entities')
    .version(version, '-V, --version')
    .exitOverride()
    .configureOutput(output)
    .showHelpAfterError('(run with --help for usage)');

  const upload = program
    .command('upload')
    .description('upload files to Unit21 entities')
    .argument('[paths...]', 'files, folders (walked recursively) or quoted glob patterns; optional with --manifest')
    .action(async (paths: string[], _flags: unknown, command: Command) =>
      setExitCode(await actions.upload(paths, givenFlags(command))),
    );
  for (const spec of UPLOAD_OPTIONS) {
    const shown = spec.default !== undefined && spec.type !== 'boolean' ? ` (default: ${spec.default})` : '';
    const env = spec.env ? ` [env: ${spec.env}]` : '';
    upload.addOption(new Option(spec.flags, spec.description + shown + env).helpGroup(`${spec.group}:`));
  }

  program
    .command('types')
    .description('list media types, file-name conventions, supported file types and the size limit')
    .action(async () => setExitCode(await actions.types()));
  return program;
}

/** Only the flags typed on the command line: env, config and defaults apply to the rest. */
function givenFlags(command: Command): Record<string, unknown> {
  const values = command.opts();
  return Object.fromEntries(Object.entries(values).filter(([key]) => command.getOptionValueSource(key) === 'cli'));
}
