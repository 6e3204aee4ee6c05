import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { plan, upload } from '../index.js';
import { parseShard, shardFileName, type Shard } from '../core/inputs/shard.js';
import { checkedOrg, resolveApiRoot } from '../core/connection/hosts.js';
import { proxyFor, proxySecrets } from '../core/connection/proxy.js';
import { createRedactor, type Redact } from '../core/shared/redact.js';
import { SetupError, U21MediaError, UsageError } from '../core/shared/errors.js';
import { defaultJournalName, stateDir } from '../core/journal/place.js';
import { checkedTarget } from '../core/check.js';
import { checkedS3Endpoint, isS3Url } from '../core/s3/url.js';
import type { PlanOptions } from '../index.js';
import type { UploadSummary } from '../core/outcomes/events.js';
import { retryCommand, shownCommandLine } from './command-line.js';
import { exitCodeOf } from './exit-codes.js';
import { count, plural } from './format.js';
import { joinDistinct } from '../core/shared/join-distinct.js';
import { createRenderer } from './render/index.js';
import { readApiKey, resolveSettings, type UploadSettings } from './settings.js';
import type { Io, OutputMode } from './io.js';

/** The host an s3:// path is read from when no endpoint is named (the bucket's own name is a subdomain of it). */
const AWS_S3_ROOT = 'https://s3.amazonaws.com';

/** Runs `u21-media upload` and returns its exit code. */
export async function runUpload(
  paths: string[],
  flags: Record<string, unknown>,
  io: Io,
  mode: OutputMode,
  args: readonly string[] = ['upload'],
): Promise<number> {
  const settings = await resolveSettings(flags, io.env, io.cwd);
  mode.json = settings.json;
  mode.dryRun = settings.dryRun;
  const shard = settings.shard !== undefined ? parseShard(settings.shard, io.env, settings.shardTotal) : undefined;
  const rate = rateOf(settings, shard);
  // Each shard keeps its own journal and report: journal.jsonl → journal.3-of-8.jsonl.
  const perShard = (path: string | undefined) =>
    path === undefined ? undefined : resolve(io.cwd, shard ? shardFileName(path, shard) : path);
  const common = {
    paths,
    infer: settings.infer,
    followLinks: settings.followLinks,
    conventions: settings.conventions,
    maxFileSize: settings.maxFileSize,
    sniff: settings.sniff,
    format: settings.format,
    convert: settings.convert,
    fit: settings.fit,
    stripLocation: settings.stripLocation,
    skipInvalid: settings.skipInvalid,
    cwd: io.cwd,
    ...(settings.entity !== undefined && { entity: settings.entity }),
    ...(settings.entityFrom !== undefined && { entityFrom: settings.entityFrom }),
    ...(settings.event !== undefined && { event: settings.event }),
    ...(settings.alert !== undefined && { alert: settings.alert }),
    ...(settings.case !== undefined && { case: settings.case }),
    ...(settings.manifest !== undefined && { manifest: settings.manifest }),
    ...(settings.retryFailed !== undefined && { retryFailed: settings.retryFailed }),
    ...(settings.mediaType !== undefined && { mediaType: settings.mediaType }),
    ...(settings.s3Endpoint !== undefined && { s3Endpoint: settings.s3Endpoint }),
    ...(shard && { shard }),
    ...(settings.org !== undefined && { org: settings.org }),
    ...(settings.env !== undefined && { env: settings.env }),
    ...(settings.baseUrl !== undefined && { baseUrl: settings.baseUrl }),
    ...(settings.retryElsewhere && { retryElsewhere: true }),
  };

  // Checked for dry runs too, so a dry run proves the real command would start.
  const { apiRoot, org, apiKey } = await checkSetup(settings, common, io);
  const given =
    settings.proxy !== undefined
      ? {
          url: settings.proxy,
          origin: settings.sources.proxy === 'flag' ? '--proxy' : `${settings.configPath}: "proxy"`,
          fromFlag: settings.sources.proxy === 'flag',
        }
      : undefined;
  const proxy = proxyFor(apiRoot, io.env, given);
  // The bucket's store is reached as Unit21 is: through the proxy chosen for its host.
  const s3Proxy = (url: string) => proxyFor(url, io.env, given)?.url;
  // Decided now for the store's host as well when an argument names objects, so a malformed proxy
  // variable only the bucket's requests would use is bad input (exit 2, nothing sent), and the
  // first line can name it. A manifest's rows may name objects too: theirs is decided as they are read.
  const storeProxy = common.paths.some(isS3Url)
    ? proxyFor(settings.s3Endpoint !== undefined ? checkedS3Endpoint(settings.s3Endpoint) : AWS_S3_ROOT, io.env, given)
    : undefined;
  // From here no line shows the key or a proxy's credentials, whatever echoes them.
  const secrets = secretsOf(apiKey?.key, [settings.proxy, ...PROXY_VARIABLES.map((name) => io.env[name])]);
  io.out.hide(secrets);
  io.err.hide(secrets);
  // Said before anything else: a config file found by searching can change where uploads go,
  // and what it set is said even with --quiet (a file that came with a clone may set --quiet).
  const foundSets = settings.configFound ? setByConfig(settings) : [];
  if (!settings.quiet || foundSets.length > 0) {
    const sets =
      foundSets.length > 0
        ? ` (found by searching; it sets ${foundSets.join(', ')})`
        : settings.configFound
          ? ' (found by searching; flags and the environment override all it sets)'
          : '';
    const config = settings.configPath ? `config ${settings.configPath}${sets}` : 'no config file';
    const via =
      (proxy ? ` · via proxy ${proxy.shown}` : '') +
      (storeProxy && storeProxy.shown !== proxy?.shown ? ` · s3 via proxy ${storeProxy.shown}` : '');
    io.err.line(
      `u21-media: ${settings.dryRun ? 'dry run for' : 'sending to'} ${apiRoot} · org ${org} · ${config}${via}`,
    );
  }

  const render = await createRenderer({
    json: settings.json,
    quiet: settings.quiet,
    verbose: settings.verbose,
    color: settings.color,
    stdout: io.out,
    stderr: io.err,
    env: io.env,
  });
  if (settings.dryRun) {
    try {
      // What the real run would skip is skipped here too: the journal it would use is read, not created.
      const journal = perShard(await journalPath(settings, apiRoot, org, io, { create: false }));
      const sending = {
        org,
        allowDuplicates: settings.allowDuplicates,
        resendUnknown: settings.resendUnknown,
        adoptOldRecords: settings.adoptOldRecords || settings.journal === undefined,
      };
      const summary = await plan({
        ...common,
        ...sending,
        s3Proxy,
        ...(journal !== undefined && { journal }),
        onEvent: render.event,
      });
      render.summary(summary);
      linksHint(summary.link_outside, io);
      return exitCodeOf(summary);
    } finally {
      render.close();
    }
  }

  const journal = perShard(await journalPath(settings, apiRoot, org, io));
  // A run checks every input before sending (unless --skip-invalid); the check ends with the total.
  let checking = !settings.skipInvalid;
  const stopper = interruptHandler(io, settings.timeout, () => checking);
  const report = perShard(settings.report);
  try {
    const summary = await upload({
      ...common,
      org,
      apiKey: apiKey!.key,
      concurrency: settings.concurrency,
      rate,
      batch: settings.batch,
      retries: settings.retries,
      timeout: settings.timeout,
      failFast: settings.failFast,
      allowDuplicates: settings.allowDuplicates,
      resendUnknown: settings.resendUnknown,
      // The default journal is this host's and org's alone: its records from before records named a host went here.
      adoptOldRecords: settings.adoptOldRecords || settings.journal === undefined,
      onEvent: render.event,
      onTotal: (files) => {
        checking = false;
        render.total(files);
      },
      ...(render.check && { onCheck: render.check }),
      drain: stopper.drain,
      signal: stopper.force,
      ...(journal !== undefined && { journal }),
      ...(report !== undefined && { report }),
      ...(proxy && { proxy: proxy.url }),
      s3Proxy,
      ...(settings.configPath !== undefined && { configPath: settings.configPath }),
      commandLine: shownCommandLine(args),
    });
    render.summary(summary, { ...(summary.journal && { journal: summary.journal }), ...(report && { report }) });
    explainEnd(summary, io, org, apiKey!.source, journal);
    const typed = (path: string | undefined) => (path !== undefined && shard ? shardFileName(path, shard) : path);
    retryHint(summary, io, args, {
      org,
      env: settings.env,
      baseUrl: settings.baseUrl,
      report: typed(settings.report),
      journal:
        settings.sources.journal === 'flag' && typeof settings.journal === 'string'
          ? typed(settings.journal)
          : undefined,
      resumable: journal !== undefined,
    });
    return exitCodeOf(summary);
  } finally {
    render.close();
    stopper.dispose();
  }
}

/**
 * The run's journal: the one given, none with --no-journal, else the default one of this API
 * host and org in the state folder, so that running the same command again is safe.
 */
async function journalPath(
  settings: UploadSettings,
  apiRoot: string,
  org: string,
  io: Io,
  { create } = { create: true },
): Promise<string | undefined> {
  if (settings.journal === false) return undefined;
  if (settings.journal !== undefined) return settings.journal;
  const dir = stateDir(io.env);
  if (dir === undefined) {
    if (!create) return undefined;
    throw new UsageError(
      'no folder for the default journal: neither XDG_STATE_HOME nor HOME is set',
      'set one, or pass --journal <file> (or --no-journal)',
    );
  }
  if (!create) return join(dir, defaultJournalName(apiRoot, org));
  try {
    // Private: a journal names every file and entity of every run.
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UsageError(
      `cannot create the journal folder ${dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      'pass --journal <file> on a writable volume, or --no-journal',
    );
  }
  return join(dir, defaultJournalName(apiRoot, org));
}

/**
 * Every check a run needs before it starts, all at once: a first run with no key, org, host and
 * entity hears of all four, not one per try. The key is read only for a real run.
 */
async function checkSetup(settings: UploadSettings, target: PlanOptions, io: Io) {
  const problems: U21MediaError[] = [];
  const record = (error: unknown): undefined => {
    if (!(error instanceof U21MediaError)) throw error;
    problems.push(error);
    return undefined;
  };
  const attempt = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch (error) {
      return record(error);
    }
  };
  const apiRoot = attempt(() => resolveApiRoot(settings));
  const org = attempt(() => checkedOrg(settings.org));
  attempt(() => checkedTarget(target));
  const apiKey = settings.dryRun ? undefined : await readApiKey(settings, io.env, io.cwd).catch(record);
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new SetupError(problems);
  return { apiRoot: apiRoot!, org: org!, apiKey };
}

// After the first Ctrl-C, uploads in flight get this long to finish before they are cut.
const MAX_DRAIN_S = 30;

/**
 * The first SIGINT, SIGTERM or SIGHUP (a closed terminal, a dropped SSH session) drains: no new
 * uploads, those in flight finish (bounded); the second aborts them.
 */
function interruptHandler(io: Io, timeoutS: number, checking: () => boolean) {
  const drain = new AbortController();
  const force = new AbortController();
  let forceTimer: NodeJS.Timeout | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (!drain.signal.aborted) {
      const again = name === 'SIGINT' ? 'press Ctrl-C again' : `send ${name} again`;
      io.err.line('');
      io.err.line(
        checking()
          ? `${name}: stopping the check; nothing is sent`
          : `${name}: finishing the uploads in flight, starting no more (${again} to abort them)`,
      );
      drain.abort();
      forceTimer = setTimeout(() => force.abort(), Math.min(timeoutS, MAX_DRAIN_S) * 1000);
      forceTimer.unref();
    } else if (!force.signal.aborted) {
      io.err.line(`${name}: aborting the uploads in flight`);
      force.abort();
    }
  };
  // A file size limit (ulimit -f) makes a write fail with EFBIG, which the run handles as a full
  // disk; the signal that comes with it must not end the run.
  const ignore = () => {};
  for (const signal of INTERRUPTS) process.on(signal, onSignal);
  process.on('SIGXFSZ', ignore);
  return {
    drain: drain.signal,
    force: force.signal,
    dispose: () => {
      clearTimeout(forceTimer);
      for (const signal of INTERRUPTS) process.off(signal, onSignal);
      process.off('SIGXFSZ', ignore);
    },
  };
}

const INTERRUPTS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** What the summary alone does not say: why the run stopped, what was left, and what to do next. */
function explainEnd(summary: UploadSummary, io: Io, org: string, keySource: string, journal: string | undefined): void {
  const hint = (line: string) => io.err.line(`  hint: ${line}`);
  // Said whatever else happened: the journal or report it names is incomplete.
  if (summary.write_error) {
    const { path, code, message } = summary.write_error;
    const after = summary.stopped === 'write-failed' ? runStopped(summary) : 'its last records may be missing';
    io.err.line(`u21-media: error: cannot write ${path} (${joinDistinct([code, message], ': ')}); ${after}`);
    hint(
      journal && path !== journal
        ? `make room (or fix it), then run the same command again to resume from ${journal}`
        : journal
          ? 'make room (or fix it), then run the same command again to resume: what was being sent when it stopped is sent again, flagged possibly_duplicated'
          : 'make room (or fix it), then run again; with --no-journal a rerun sends every file again',
    );
  }
  if (summary.stopped === 'auth') {
    io.err.line(`u21-media: error: the API refused the key; ${runStopped(summary)}`);
    hint(`check the key from ${keySource}, and that it has access to org "${org}"`);
    return;
  }
  if (summary.stopped === 'certificate' || summary.stopped === 'unreachable') {
    networkStop(summary, io);
    return;
  }
  if (summary.stopped === 'interrupted' && summary.total === 0) {
    io.err.line('u21-media: interrupted during the check, before any file was sent');
    hint('run the same command again to check the files and send them');
    return;
  }
  if (summary.stopped === 'interrupted') {
    io.err.line(`u21-media: interrupted: ${count(summary.uploaded)} uploaded, ${count(summary.not_sent)} not sent`);
    hint(
      journal
        ? `run the same command again to resume; files recorded in ${journal} are skipped`
        : 'a rerun sends every file again; without --no-journal runs are resumable',
    );
    return;
  }
  if (summary.stopped === 'fail-fast') {
    io.err.line(
      `u21-media: stopped after the first failure (--fail-fast); ${plural(summary.not_sent, 'file')} not sent`,
    );
  }
  if (summary.unknown_outcome > 0) {
    io.err.line(
      `u21-media: ${plural(summary.unknown_outcome, 'file')} sent by an earlier run without an answer ${summary.unknown_outcome === 1 ? 'was' : 'were'} not sent again (--no-resend-unknown)`,
    );
    hint(
      'check those files on their entities (see the skipped unknown_outcome lines), then run without --no-resend-unknown to send them flagged',
    );
  }
  linksHint(summary.link_outside, io);
}

/** How far a stopped run got: the files it left unsent, if any. */
const runStopped = (summary: UploadSummary): string =>
  summary.not_sent > 0 ? `the run stopped (${plural(summary.not_sent, 'file')} not sent)` : 'the run stopped';

/** A run stopped by the network: one line naming the host (or the proxy) and the cause, and what to do. */
function networkStop(summary: UploadSummary, io: Io): void {
  const host = new URL(summary.host).host;
  const cause = summary.stop_cause
    ? ` (${joinDistinct([summary.stop_cause.error_code, summary.stop_cause.message], ': ')})`
    : '';
  const unsent = runStopped(summary);
  if (summary.stopped === 'certificate') {
    io.err.line(`u21-media: error: the TLS certificate of ${host} is not trusted${cause}; ${unsent}`);
    // Node 22.15 / 23.8 and later can trust the system's store, where a company's CA is often installed.
    const systemCa = process.allowedNodeEnvironmentFlags.has('--use-system-ca')
      ? ', or trust the system store with NODE_OPTIONS=--use-system-ca (or NODE_USE_SYSTEM_CA=1)'
      : '';
    io.err.line(
      `  hint: if a proxy or gateway on your network re-signs TLS, point NODE_EXTRA_CA_CERTS at its CA certificate (a PEM file)${systemCa}`,
    );
    return;
  }
  const where = summary.proxy ? `${host} through the proxy ${summary.proxy}` : summary.host;
  io.err.line(`u21-media: error: cannot reach ${where}${cause}; no request got an answer, so ${unsent}`);
  io.err.line(
    `  hint: ${summary.proxy ? 'check the proxy URL (--proxy, HTTPS_PROXY) and that it is up' : 'check --env / --base-url and the network; behind a proxy, set HTTPS_PROXY or pass --proxy <url>'}`,
  );
}

/**
 * The way back after files failed or were not sent: the exact command that sends them again
 * from the report, said even with --quiet; without a report, how to get one.
 */
function retryHint(
  summary: UploadSummary,
  io: Io,
  args: readonly string[],
  run: {
    org: string;
    env?: string | undefined;
    baseUrl?: string | undefined;
    report?: string | undefined;
    journal?: string | undefined;
    resumable: boolean;
  },
): void {
  const toRetry = summary.failed + summary.not_sent;
  if (toRetry === 0) return;
  // Only files not sent, and a journal: running the same command again resumes, as said above.
  if (run.report === undefined && run.resumable && summary.failed === 0) return;
  const which = [
    summary.failed > 0 && `${count(summary.failed)} failed`,
    summary.not_sent > 0 && `${count(summary.not_sent)} not sent`,
  ]
    .filter(Boolean)
    .join(', ');
  // A refused key, an untrusted certificate or a host that never answered fails every file alike: what to fix first is said above, not how to retry.
  const fixFirst = summary.stopped === 'auth' || summary.stopped === 'certificate' || summary.stopped === 'unreachable';
  if (run.report === undefined) {
    if (fixFirst) return;
    io.err.line(`u21-media: ${plural(toRetry, 'file')} to retry (${which})`);
    io.err.line('  hint: add --report <file> to get a report to retry from (u21-media upload --retry-failed <file>)');
    return;
  }
  // A report that could not be written whole cannot say which files to retry.
  if (summary.write_error && resolve(io.cwd, run.report) === summary.write_error.path) return;
  const { command, proxyLeftOut } = retryCommand(args, {
    report: run.report,
    org: run.org,
    host: {
      ...(run.env !== undefined && { env: run.env }),
      ...(run.baseUrl !== undefined && { baseUrl: run.baseUrl }),
    },
    ...(run.journal !== undefined && { journal: run.journal }),
  });
  io.err.line(
    `u21-media: ${fixFirst ? 'once that is fixed, ' : ''}to retry the ${plural(toRetry, 'file')} (${which}), run from this folder:`,
  );
  io.err.line(`  ${command}`);
  if (proxyLeftOut)
    io.err.line('  hint: the proxy is left out because it holds credentials: set HTTPS_PROXY to it first');
}

/** Links out of the folder were left: the run is not clean until someone decides about them. */
function linksHint(count: number, io: Io) {
  if (count === 0) return;
  io.err.line(
    `u21-media: ${plural(count, 'link')} out of the folder ${count === 1 ? 'was' : 'were'} not followed (see the skipped link_outside lines)`,
  );
  io.err.line('  hint: pass --follow-links if they should be uploaded, or remove them');
}

const PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'];

/** The run's secrets, for every line it prints: the key, and the credentials of each proxy it may go through. */
function secretsOf(apiKey: string | undefined, proxies: ReadonlyArray<string | false | undefined>): Redact {
  const credentials = proxies.flatMap((raw) => {
    if (typeof raw !== 'string') return [];
    try {
      return proxySecrets(new URL(raw.trim()));
    } catch {
      return []; // refused as a bad URL before anything is sent
    }
  });
  // A secret of a few characters (a test key such as "k") would blank every line that holds them.
  return createRedactor(...[apiKey ?? '', ...credentials].filter((secret) => secret.length >= 4));
}

/** What the config file decided for this run, as `key=value` (flags and the environment win over it). */
function setByConfig(settings: UploadSettings): string[] {
  const values = settings as unknown as Record<string, unknown>;
  const set = Object.entries(settings.sources)
    .filter(([, source]) => source === 'config')
    .map(([key]) => `${key}=${typeof values[key] === 'string' ? JSON.stringify(values[key]) : String(values[key])}`);
  if (settings.conventions.length > 0) set.push(`conventions (${plural(settings.conventions.length, 'rule')})`);
  return set;
}

/**
 * Requests per second for this process: --rate, or this shard's share of --rate-total (shards
 * behind one NAT share Unit21's 200 per IP). Each shard still slows down on its own 429s.
 */
export function rateOf(
  settings: Pick<UploadSettings, 'rate' | 'rateTotal' | 'sources'>,
  shard: Pick<Shard, 'n'> | undefined,
): number {
  if (settings.rateTotal === undefined) return settings.rate;
  if (settings.sources.rate !== 'default')
    throw new UsageError(
      '--rate and --rate-total both set the pace',
      'give --rate-total for all shards together, or --rate for each, not both',
    );
  return settings.rateTotal / (shard?.n ?? 1);
}
