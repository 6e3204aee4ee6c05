import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { isLoopback } from '../core/hosts.js';
import { SANDBOX_API_KEY, SANDBOX_ORG, startSandbox } from '../sandbox/server.js';
import { MAX_WAIT_MS, type FaultOptions } from '../sandbox/faults.js';
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
}

const number = (flag: string, raw: string | undefined, range: Parameters<typeof numberFrom>[2]) => (raw === undefined ? undefined : numberFrom(raw, flag, range));

/** Runs `u21-media sandbox` until SIGINT/SIGTERM; returns its exit code. */
export async function runSandbox(flags: SandboxFlags, io: Io): Promise<number> {
  const port = number('--port', flags.port, { max: 65535, whole: true }) ?? 0;
  const failRate = number('--fail-rate', flags.failRate, { max: 1 }) ?? 0;
  const lockRate = number('--lock-rate', flags.lockRate, { max: 1 }) ?? 0;
  if (failRate + lockRate > 1) throw new UsageError('--fail-rate and --lock-rate add up to more than 1', 'lower one of them');
  const rateLimit = number('--rate-limit', flags.rateLimit, { min: 0.001 });
  const latency = number('--latency', flags.latency, { max: MAX_WAIT_MS });
  const seed = number('--seed', flags.seed, { max: 2 ** 32 - 1, whole: true });
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
  const sandbox = await startSandbox({
    port,
    host,
    apiKey: flags.apiKey ?? SANDBOX_API_KEY,
    org: flags.org ?? SANDBOX_ORG,
    faults,
    ...(flags.strictMediaTypes && { strictMediaTypes: true }),
    ...(dir && { dir }),
    onRequest: (r, ms) => io.out.line(`${r.method} ${r.path} ${r.status || 'no answer'}${r.files ? ` (${plural(r.files, 'file')})` : ''}${r.fault ? ` [${r.fault}]` : ''} ${ms} ms`),
  }).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot listen on ${host}:${port} (${error.code ?? error.message})`, 'pick another --port, or 0 for a free one');
  });

  const loopback = isLoopback(new URL(sandbox.url));
  io.err.lines(
    [
      `Local Unit21 media API at ${sandbox.url}`,
      `  org       ${sandbox.org}`,
      `  api key   ${sandbox.apiKey}`,
      `  storing   ${dir ?? 'in memory only (use --dir to keep the files)'}`,
      ...(loopback ? [] : [`  warning   listening on ${host}: other machines can reach it, over plain HTTP`]),
      '',
      `  U21_API_KEY=${sandbox.apiKey} u21-media upload fixtures --org ${sandbox.org} --base-url ${sandbox.url} --entity demo-1`,
      `  curl -H 'u21-key: ${sandbox.apiKey}' ${sandbox.url}/v1/${sandbox.org}/entities/demo-1`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

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
