import { plan, planEvents, upload } from '../index.js';
import { InputError, UsageError } from '../core/errors.js';
import { resolveApiRoot } from '../core/hosts.js';
import type { UploadSummary } from '../core/events.js';
import { EXIT } from './exit-codes.js';
import { createRenderer } from './render.js';
import { readApiKey, resolveSettings } from './settings.js';
import type { Io } from './io.js';

/** Runs `u21-media upload` and returns its exit code. */
export async function runUpload(paths: string[], flags: Record<string, unknown>, io: Io): Promise<number> {
  const settings = await resolveSettings(flags, io.env, io.cwd);
  if (settings.entity === undefined) {
    throw new UsageError('no entity given', 'pass --entity <id> to send every file to one entity');
  }
  // Checked for dry runs too, so a dry run proves the real command would start.
  resolveApiRoot(settings);
  if (!settings.org) throw new UsageError('--org is required', 'pass your Unit21 org name with --org, U21_ORG or "org" in the config file');

  const render = createRenderer(settings.json, io.stdout, io.stderr);
  const common = {
    paths,
    entity: settings.entity,
    infer: settings.infer,
    conventions: settings.conventions,
    maxFileSize: settings.maxFileSize,
    cwd: io.cwd,
    ...(settings.mediaType !== undefined && { mediaType: settings.mediaType }),
  };

  if (settings.dryRun) {
    const result = await plan(common);
    if (result.problems.length > 0 && !settings.skipInvalid) throw new InputError(result.problems);
    const { events, summary } = planEvents(result);
    events.forEach(render.event);
    render.summary(summary);
    return EXIT.ok;
  }

  const apiKey = await readApiKey(settings, io.env, io.cwd);
  const summary = await upload({
    ...common,
    org: settings.org,
    apiKey,
    format: settings.format,
    concurrency: settings.concurrency,
    skipInvalid: settings.skipInvalid,
    onEvent: render.event,
    ...(settings.env !== undefined && { env: settings.env }),
    ...(settings.baseUrl !== undefined && { baseUrl: settings.baseUrl }),
  });
  render.summary(summary);
  return exitCodeOf(summary, io, settings.org);
}

function exitCodeOf(summary: UploadSummary, io: Io, org: string): number {
  if (summary.stopped === 'auth') {
    io.stderr.write(`u21-media: error: the API refused the key; the run stopped (${summary.not_sent} files not sent)\n`);
    io.stderr.write(`  hint: check U21_API_KEY or --api-key-file, and that the key has access to org "${org}"\n`);
    return EXIT.keyRefused;
  }
  return summary.failed > 0 || summary.invalid > 0 ? EXIT.someFailed : EXIT.ok;
}
