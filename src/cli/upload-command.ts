import { resolve } from 'node:path';
import { plan, upload } from '../index.js';
import { UsageError } from '../core/errors.js';
import { parseShard, shardFileName } from '../core/shard.js';
import { resolveApiRoot } from '../core/hosts.js';
import type { UploadSummary } from '../core/events.js';
import { EXIT } from './exit-codes.js';
import { plural } from './format.js';
import { createRenderer } from './render/index.js';
import { readApiKey, resolveSettings, type UploadSettings } from './settings.js';
import type { Io } from './io.js';

/** Runs `u21-media upload` and returns its exit code. */
export async function runUpload(paths: string[], flags: Record<string, unknown>, io: Io): Promise<number> {
  const settings = await resolveSettings(flags, io.env, io.cwd);
  // Checked for dry runs too, so a dry run proves the real command would start.
  resolveApiRoot(settings);
  if (!settings.org) throw new UsageError('--org is required', 'pass your Unit21 org name with --org, U21_ORG or "org" in the config file');

  const shard = settings.shard !== undefined ? parseShard(settings.shard, io.env, settings.shardTotal) : undefined;
  // Each shard keeps its own journal and report: journal.jsonl → journal.3-of-8.jsonl.
  const perShard = (path: string | undefined) => (path === undefined ? undefined : resolve(io.cwd, shard ? shardFileName(path, shard) : path));
  const render = await createRenderer({ json: settings.json, quiet: settings.quiet, verbose: settings.verbose, color: settings.color, stdout: io.stdout, stderr: io.stderr, env: io.env });
  const common = {
    paths,
    infer: settings.infer,
    conventions: settings.conventions,
    maxFileSize: settings.maxFileSize,
    skipInvalid: settings.skipInvalid,
    cwd: io.cwd,
    ...(settings.entity !== undefined && { entity: settings.entity }),
    ...(settings.entityFrom !== undefined && { entityFrom: settings.entityFrom }),
    ...(settings.event !== undefined && { event: settings.event }),
    ...(settings.manifest !== undefined && { manifest: settings.manifest }),
    ...(settings.mediaType !== undefined && { mediaType: settings.mediaType }),
    ...(shard && { shard }),
  };

  if (settings.dryRun) {
    try {
      const summary = await plan({ ...common, onEvent: render.event });
      render.summary(summary);
      return summary.invalid > 0 ? EXIT.someFailed : EXIT.ok;
    } finally {
      render.close();
    }
  }

  const { key: apiKey, source: keySource } = await readApiKey(settings, io.env, io.cwd);
  const stopper = interruptHandler(io, settings.timeout);
  const journal = perShard(settings.journal);
  const report = perShard(settings.report);
  try {
    const summary = await upload({
      ...common,
      org: settings.org,
      apiKey,
      format: settings.format,
      concurrency: settings.concurrency,
      rate: settings.rate,
      batch: settings.batch,
      retries: settings.retries,
      timeout: settings.timeout,
      failFast: settings.failFast,
      allowDuplicates: settings.allowDuplicates,
      onEvent: render.event,
      onTotal: render.total,
      drain: stopper.drain,
      signal: stopper.force,
      ...(journal !== undefined && { journal }),
      ...(report !== undefined && { report }),
      ...(settings.env !== undefined && { env: settings.env }),
      ...(settings.baseUrl !== undefined && { baseUrl: settings.baseUrl }),
    });
    render.summary(summary, { ...(journal && { journal }), ...(report && { report }) });
    return exitCodeOf(summary, io, settings, keySource, journal);
  } finally {
    render.close();
    stopper.dispose();
  }
}

// After the first Ctrl-C, uploads in flight get this long to finish before they are cut.
const MAX_DRAIN_S = 30;

/** First SIGINT/SIGTERM drains (no new uploads; in-flight ones finish, bounded), the second aborts. */
function interruptHandler(io: Io, timeoutS: number) {
  const drain = new AbortController();
  const force = new AbortController();
  let forceTimer: NodeJS.Timeout | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (!drain.signal.aborted) {
      io.stderr.write(`\n${name}: finishing the uploads in flight, starting no more (press Ctrl-C again to abort them)\n`);
      drain.abort();
      forceTimer = setTimeout(() => force.abort(), Math.min(timeoutS, MAX_DRAIN_S) * 1000);
      forceTimer.unref();
    } else if (!force.signal.aborted) {
      io.stderr.write(`${name}: aborting the uploads in flight\n`);
      force.abort();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    drain: drain.signal,
    force: force.signal,
    dispose: () => {
      clearTimeout(forceTimer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function exitCodeOf(summary: UploadSummary, io: Io, settings: UploadSettings, keySource: string, journal: string | undefined): number {
  const hint = (line: string) => io.stderr.write(`  hint: ${line}\n`);
  if (summary.stopped === 'auth') {
    const unsent = summary.not_sent > 0 ? ` (${plural(summary.not_sent, 'file')} not sent)` : '';
    io.stderr.write(`u21-media: error: the API refused the key; the run stopped${unsent}\n`);
    hint(`check the key from ${keySource}, and that it has access to org "${settings.org}"`);
    return EXIT.keyRefused;
  }
  if (summary.stopped === 'interrupted') {
    io.stderr.write(`u21-media: interrupted: ${summary.uploaded} uploaded, ${summary.not_sent} not sent\n`);
    hint(
      journal
        ? `run the same command again to resume; files recorded in ${journal} are skipped`
        : 'a rerun sends every file again; add --journal <file> to make runs resumable',
    );
    return EXIT.interrupted;
  }
  if (summary.stopped === 'fail-fast') {
    io.stderr.write(`u21-media: stopped after the first failure (--fail-fast); ${summary.not_sent} files not sent\n`);
  }
  return summary.failed > 0 || summary.invalid > 0 ? EXIT.someFailed : EXIT.ok;
}
