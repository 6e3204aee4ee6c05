import { resolve } from 'node:path';
import { UsageError } from '../core/shared/errors.js';
import { isLoopback } from '../core/connection/hosts.js';
import { startSandbox } from '../sandbox/server.js';
import { SANDBOX_API_KEY, SANDBOX_ORG } from '../sandbox/defaults.js';
import { MAX_WAIT_MS, type FaultOptions } from '../sandbox/faults.js';
import { writeSamples } from '../sandbox/samples.js';
import { shellWord } from './command-line.js';
import { EXIT } from './exit-codes.js';
import { numberFrom } from './number.js';
import { plural } from './format.js';
import type { Io } from './io.js';

export interface SandboxFlags {
  port?: string;
  host?: string;
  dir?: string;
  apiKey?: string;
  org?: string;
  failRate?: string;
  lockRate?: string;
  rateLimit?: string;
  latency?: string;
  seed?: string;
  strictMediaTypes?: boolean;
  samples?: string;
  missing?: string[];
  revokeKeyAfter?: string;
}

const number = (flag: string, raw: string | undefined, range: Parameters<typeof numberFrom>[2]) =>
  raw === undefined ? undefined : numberFrom(raw, flag, range);

/** Runs `u21-media sandbox` until SIGINT/SIGTERM; returns its exit code. */
export async function runSandbox(flags: SandboxFlags, io: Io): Promise<number> {
  const port = number('--port', flags.port, { max: 65535, whole: true }) ?? 0;
  const failRate = number('--fail-rate', flags.failRate, { max: 1 }) ?? 0;
  const lockRate = number('--lock-rate', flags.lockRate, { max: 1 }) ?? 0;
  if (failRate + lockRate > 1)
    throw new UsageError('--fail-rate and --lock-rate add up to more than 1', 'lower one of them');
  const rateLimit = number('--rate-limit', flags.rateLimit, { min: 0.001 });
  const latency = number('--latency', flags.latency, { max: MAX_WAIT_MS });
  const seed = number('--seed', flags.seed, { max: 2 ** 32 - 1, whole: true });
  const revokeKeyAfter = number('--revoke-key-after', flags.revokeKeyAfter, { whole: true });
  const host = flags.host ?? '127.0.0.1';
  const faults: FaultOptions = {
    // A failure is a 500, a 503 or a reset before storing, in equal shares.
    error500: failRate / 3,
    error503: failRate / 3,
    resetBeforeStore: failRate / 3,
    locked423: lockRate,
    ...(rateLimit !== undefined && { rateLimit }),
    ...(latency !== undefined && { latencyMs: latency }),
    ...(seed !== undefined && { seed }),
  };
  const dir = flags.dir ? resolve(io.cwd, flags.dir) : undefined;
  const samples = flags.samples ? resolve(io.cwd, flags.samples) : undefined;
  if (samples) await writeSamples(samples);
  const sandbox = await startSandbox({
    port,
    host,
    apiKey: flags.apiKey ?? SANDBOX_API_KEY,
    org: flags.org ?? SANDBOX_ORG,
    faults,
    ...(flags.strictMediaTypes && { strictMediaTypes: true }),
    ...(dir && { dir }),
    ...(flags.missing && { missing: flags.missing }),
    ...(revokeKeyAfter !== undefined && { revokeKeyAfter }),
    onRequest: (r, ms) =>
      io.out.line(
        `${r.method} ${r.path} ${r.status || 'no answer'}${r.files ? ` (${plural(r.files, 'file')})` : ''}${r.fault ? ` [${r.fault}]` : ''} ${ms} ms`,
      ),
  }).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(
      `cannot listen on ${host}:${port} (${error.code ?? error.message})`,
      'pick another --port, or 0 for a free one',
    );
  });

  io.err.lines(banner(sandbox, { dir, samples, missing: flags.missing ?? [], revokeKeyAfter, host }));

  await new Promise<void>((resolveStop) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolveStop();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await sandbox.close();
  io.err.line(`Stopped; ${sandbox.stored.length} media stored.`);
  return EXIT.ok;
}

interface Shown {
  dir: string | undefined;
  samples: string | undefined;
  missing: string[];
  revokeKeyAfter: number | undefined;
  host: string;
}

/** What the sandbox serves and the commands that work against it, from an installed copy too. */
function banner(sandbox: { url: string; org: string; apiKey: string }, shown: Shown): string {
  // The default key is the sandbox's own; one given with --api-key may be a real one, and is never printed.
  const key = sandbox.apiKey === SANDBOX_API_KEY ? SANDBOX_API_KEY : undefined;
  const keyWord = key ?? '<the --api-key you gave>';
  const org = shellWord(sandbox.org);
  const files = shown.samples ? shellWord(shown.samples) : '<files or folders>';
  return [
    `Local Unit21 media API at ${sandbox.url}`,
    `  org       ${sandbox.org}`,
    `  api key   ${key ?? 'as given with --api-key (not shown)'}`,
    `  storing   ${shown.dir ?? 'in memory only (use --dir to keep the files)'}`,
    ...(shown.samples ? [`  samples   ${shown.samples}`] : []),
    ...(shown.missing.length > 0 ? [`  missing   ${shown.missing.join(', ')} (answered 404 resource_not_found)`] : []),
    ...(shown.revokeKeyAfter !== undefined
      ? [`  revoked   the key, after ${plural(shown.revokeKeyAfter, 'request')} (answered 401)`]
      : []),
    ...(isLoopback(new URL(sandbox.url))
      ? []
      : [`  warning   listening on ${shown.host}: other machines can reach it, over plain HTTP`]),
    '',
    `  U21_API_KEY=${keyWord} u21-media upload ${files} --org ${org} --base-url ${sandbox.url} --entity demo-1`,
    `  curl -H 'u21-key: ${keyWord}' ${sandbox.url}/v1/${encodeURIComponent(sandbox.org)}/entities/demo-1`,
    ...(shown.samples ? [] : ['  (no files at hand? start it with --samples <folder> to write sample ones there)']),
    '',
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}
