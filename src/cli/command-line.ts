import { UPLOAD_OPTIONS } from '../core/options.js';
import { maskUserInfo } from '../core/shared/mask-user-info.js';

/** One option as typed: its flag, the option's key, and its value when it takes one. */
interface Typed {
  flag: string;
  key: string | undefined;
  value?: string;
}

// Every spelling of every upload option, and whether it takes a value (`--org <name>`).
const SPELLINGS = new Map(
  UPLOAD_OPTIONS.flatMap((spec) =>
    spec.flags
      .split(/[\s,]+/)
      .filter((word) => word.startsWith('-'))
      .map((flag) => [flag, { key: spec.key, takesValue: spec.flags.includes('<') }] as const),
  ),
);

/** The upload command's arguments, split into options (in order) and path arguments. */
export function splitArgs(args: readonly string[]): { options: Typed[]; paths: string[] } {
  const options: Typed[] = [];
  const paths: string[] = [];
  const rest = args[0] === 'upload' ? args.slice(1) : [...args];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (token === '--') {
      paths.push(...rest.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      paths.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const flag = token.startsWith('--') && eq > 0 ? token.slice(0, eq) : token;
    const spelling = SPELLINGS.get(flag);
    if (spelling?.takesValue)
      options.push({
        flag,
        key: spelling.key,
        value: eq > 0 && flag !== token ? token.slice(eq + 1) : (rest[++i] ?? ''),
      });
    else options.push({ flag, key: spelling?.key });
  }
  return { options, paths };
}

/** A word as a POSIX shell reads it back: bare when safe, else in single quotes. */
export const shellWord = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** The command line as typed, for the report's header: any URL's credentials (a proxy's) masked. */
export const shownCommandLine = (args: readonly string[]) =>
  ['u21-media', ...args].map((word) => shellWord(maskUserInfo(word))).join(' ');

// Options the report replaces (it names the files and entities) or a retry must not repeat:
// a shard's report holds only its shard's files already.
const NOT_REPEATED = new Set([
  'entity',
  'event',
  'alert',
  'case',
  'entityFrom',
  'manifest',
  'retryFailed',
  'retryElsewhere',
  'adoptOldRecords',
  'shard',
  'shardTotal',
  'report',
  'dryRun',
]);

/** `report.csv` → `report.retry.csv` → `report.retry2.csv`: the retry's own report, beside the one it reads. */
export function nextReportName(report: string): string {
  const match = /^(.*?)(?:\.retry(\d*))?(\.[^./\\]+)$/.exec(report);
  if (!match) return `${report}.retry`;
  const [, stem, n, ext] = match;
  return `${stem}.retry${n === undefined ? '' : String(Number(n || '1') + 1)}${ext}`;
}

/**
 * The command that uploads again what a run's report lists as failed or not sent: the run's
 * own options, without its files and entity flags, plus --retry-failed and a report of its own.
 * It holds no secret: the key never is on the command line, and a proxy given with credentials
 * is left out (for HTTPS_PROXY to give), which `proxyLeftOut` says.
 */
export function retryCommand(
  args: readonly string[],
  run: { report: string; journal?: string; org: string; host: { env?: string; baseUrl?: string } },
): { command: string; proxyLeftOut: boolean } {
  const { options } = splitArgs(args);
  const words = ['u21-media', 'upload', '--retry-failed', run.report];
  let proxyLeftOut = false;
  const typed = new Set(options.map((o) => o.key));
  // Where the files went, said even when it came from the environment or a config file.
  if (!typed.has('org')) words.push('--org', run.org);
  if (!typed.has('env') && !typed.has('baseUrl')) {
    if (run.host.baseUrl !== undefined) words.push('--base-url', run.host.baseUrl);
    else if (run.host.env !== undefined) words.push('--env', run.host.env);
  }
  for (const option of options) {
    if (option.key !== undefined && NOT_REPEATED.has(option.key)) continue;
    if (option.key === 'proxy' && option.value !== undefined && maskUserInfo(option.value) !== option.value) {
      proxyLeftOut = true;
      continue;
    }
    // A shard's journal has the shard in its name: the retry, run without --shard, names it as written.
    const value = option.key === 'journal' && run.journal !== undefined ? run.journal : option.value;
    words.push(option.flag, ...(value === undefined ? [] : [value]));
  }
  words.push('--report', nextReportName(run.report));
  return { command: words.map((word) => shellWord(maskUserInfo(word))).join(' '), proxyLeftOut };
}
