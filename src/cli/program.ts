import type { SandboxFlags } from './sandbox-command.js';
import { Argument, Command, Option, type OutputConfiguration } from 'commander';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { flagOf, UPLOAD_OPTIONS } from '../core/options.js';
import { UsageError } from '../core/shared/errors.js';
import type { JournalFlags } from './journal-command.js';
import { SANDBOX_API_KEY, SANDBOX_ORG } from '../sandbox/defaults.js';

/** Handlers the program calls; each returns an exit code. */
export interface Actions {
  upload(paths: string[], flags: Record<string, unknown>): Promise<number>;
  types(): Promise<number>;
  sandbox(flags: SandboxFlags): Promise<number>;
  reportMerge(files: string[], output: string | undefined): Promise<number>;
  journal(action: 'list' | 'show' | 'forget', file: string | undefined, flags: JournalFlags): Promise<number>;
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
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\nRun "u21-media upload --help" for the upload options and examples.\n${FOOTER}`);

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
    if (spec.negatable)
      upload.addOption(new Option(`--no-${flagOf(spec).slice(2)}`, spec.negatable).helpGroup(`${spec.group}:`));
  }

  // Known, so that typing it gets the reason there is none rather than "unknown option".
  upload.addOption(new Option('--api-key <key>').hideHelp());
  upload.on('option:api-key', () => {
    throw new UsageError(
      '--api-key: there is no such option, on purpose: a key on the command line is kept in the shell history and shown by ps',
      'set U21_API_KEY, or put the key in a file and pass --api-key-file <file>; the key just typed is in your shell history now',
    );
  });

  upload.addHelpText('after', UPLOAD_EXAMPLES);

  program
    .command('types')
    .description('list media types, file-name conventions, supported file types and the size limit')
    .action(async () => setExitCode(await actions.types()));
  program
    .command('report')
    .description('work with --report files')
    .command('merge')
    .description(
      "combine reports (.json or .csv) into one: shards' reports, or a run's and its retries'; each file's last outcome counts, and the totals say what is still to do",
    )
    .argument('<files...>', 'reports written by --report, e.g. report.*-of-8.csv, or report.csv report.retry*.csv')
    .option('--output <file>', 'write the merged report here (.json or .csv); otherwise JSON on stdout')
    .action(async (files: string[], flags: { output?: string }) =>
      setExitCode(await actions.reportMerge(files, flags.output)),
    );

  const journal = program
    .command('journal')
    .description('show what a journal holds, or forget an entity or a run so that its files are sent again')
    .addHelpText(
      'after',
      `\nWithout a file, the journal is the default one of the org and host (--org, --env, --base-url, or their U21_ variables and config file).\n${JOURNAL_EXAMPLES}`,
    );
  journal
    .command('list')
    .description(
      'list the default journals (one per API host and org) in $XDG_STATE_HOME/u21-media, else ~/.local/state/u21-media',
    )
    .action(async () => setExitCode(await actions.journal('list', undefined, {})));
  const naming = (command: Command) =>
    command
      .argument('[journal]', 'a journal file; otherwise the default one of --org and --env / --base-url')
      .option('--org <name>', 'the org of the runs')
      .option('--env <name>', 'their Unit21 environment')
      .option('--base-url <url>', 'their API base URL');
  naming(journal.command('show').description('what a journal holds, run by run'))
    .option('--entity <id>', 'list each file recorded for this entity instead')
    .option('--run <id>', 'list each file of this run instead (the run id of its summary)')
    .option(
      '--possibly-duplicated',
      'list each file sent without an answer (failed but maybe stored, or uploaded maybe twice)',
    )
    .action(async (file: string | undefined, flags: JournalFlags) =>
      setExitCode(await actions.journal('show', file, flags)),
    );
  naming(
    journal
      .command('forget')
      .description("take an entity's or a run's records out, so the next run sends those files again"),
  )
    .option('--entity <id>', "forget this entity's records")
    .option('--run <id>', "forget this run's records (the run id of its summary)")
    .action(async (file: string | undefined, flags: JournalFlags) =>
      setExitCode(await actions.journal('forget', file, flags)),
    );

  program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .addHelpText(
      'after',
      '\nInstall:\n  bash  $ echo \'eval "$(u21-media completion bash)"\' >> ~/.bashrc\n  zsh   $ echo \'eval "$(u21-media completion zsh)"\' >> ~/.zshrc\n  fish  $ u21-media completion fish > ~/.config/fish/completions/u21-media.fish\n',
    )
    .action((shell: Shell) => output.writeOut?.(completionScript(program, shell)));

  program
    .command('sandbox')
    .description('run a local Unit21-compatible media API for demos, CI dry runs and pipeline tests')
    .option('--port <n>', 'port to listen on; 0 picks a free one', '0')
    .option('--host <host>', 'address to bind; anything but loopback must be asked for', '127.0.0.1')
    .option('--dir <folder>', 'write accepted files under <folder>/<org>/<entity>/ with a .meta.json each')
    .option('--api-key <key>', 'the key clients must send (a key for this sandbox, not a Unit21 one)', SANDBOX_API_KEY)
    .option('--org <name>', 'the org name the key has access to', SANDBOX_ORG)
    .option(
      '--samples <folder>',
      'first write sample files (ID scans, a selfie, a PDF, a video) to <folder>, and show the command that uploads them',
    )
    .option(
      '--missing <id>',
      'answer 404 resource_not_found for this entity, event, alert or case id, as Unit21 does for one that does not exist (repeat for more)',
      (id: string, ids: string[] = []) => [...ids, id],
    )
    .option(
      '--revoke-key-after <n>',
      'accept the key for n requests, then answer 401 as to a revoked key (0: refuse it from the start)',
    )
    .option('--fail-rate <p>', 'share of requests answered 500, 503 or reset (0 to 1)')
    .option('--lock-rate <p>', 'share of requests answered 423 (0 to 1)')
    .option('--rate-limit <n>', 'requests per second before real 429s with X-RateLimit-* headers')
    .option('--latency <ms>', 'delay added to every answer')
    .option('--seed <n>', 'seed for the faults, for reproducible runs')
    .option('--strict-media-types', "refuse (400) media_type values outside Unit21's list, as its spec's enum does")
    .addHelpText(
      'after',
      '\nExamples:\n  $ u21-media sandbox --samples ./u21-samples --missing cust-9\n  $ u21-media sandbox --port 8080 --dir ./sandbox-data --fail-rate 0.1 --rate-limit 50 --seed 7\n',
    )
    .action(async (flags: SandboxFlags) => setExitCode(await actions.sandbox(flags)));
  return program;
}

/** Only the flags typed on the command line: env, config and defaults apply to the rest. */
function givenFlags(command: Command): Record<string, unknown> {
  const values = command.opts();
  return Object.fromEntries(Object.entries(values).filter(([key]) => command.getOptionValueSource(key) === 'cli'));
}

const FOOTER = `The API key comes from U21_API_KEY or --api-key-file (never a flag).
Exit codes: 0 all uploaded, 1 some failed, 2 bad input (nothing sent), 3 key refused, 130 interrupted.`;

const JOURNAL_EXAMPLES = `Examples:
  $ u21-media journal list
  $ u21-media journal show --org acme --env prod1
  $ u21-media journal forget --org acme --env prod1 --entity cust-42   # after deleting its media in Unit21
`;

const UPLOAD_EXAMPLES = `
Examples:
  # one customer's scans to one entity
  $ u21-media upload ./kyc/cust-42 --org acme --env prod1 --entity cust-42

  # a vendor export with a folder per customer; run it again after a crash or Ctrl-C to resume
  $ u21-media upload ./export --org acme --env prod1 --entity-from dir

  # a manifest from a database query, with an audit report
  $ u21-media upload --manifest manifest.csv --org acme --env prod1 --report report.csv

  # in CI: JSON events on stdout, the exit code says what happened
  $ u21-media upload ./out --org acme --env sandbox1 --entity "$ENTITY_ID" --json > events.jsonl

  # check everything, send nothing
  $ u21-media upload ./export --org acme --env prod1 --entity-from dir --dry-run

${FOOTER}
`;
