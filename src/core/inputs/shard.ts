import { createHash } from 'node:crypto';
import { UsageError } from '../shared/errors.js';

/** This run's part of a backfill split across machines: shard `k` of `n`, 1-based. */
export interface Shard {
  k: number;
  n: number;
}

/**
 * `k/n`, or `auto`: the index a job runner gives each copy of a command — Kubernetes Indexed
 * Jobs (JOB_COMPLETION_INDEX) or AWS Batch array jobs (AWS_BATCH_JOB_ARRAY_INDEX), both
 * 0-based — with the total from `total` (--shard-total) or U21_SHARD_TOTAL.
 */
export function parseShard(text: string, env: NodeJS.ProcessEnv, total?: number): Shard {
  if (text === 'auto') {
    const index = env.JOB_COMPLETION_INDEX ?? env.AWS_BATCH_JOB_ARRAY_INDEX;
    const n = total ?? Number(env.U21_SHARD_TOTAL);
    if (index === undefined || !/^\d+$/.test(index)) {
      throw new UsageError(
        '--shard auto: no job index found',
        'run it as a Kubernetes Indexed Job or an AWS Batch array job, or pass --shard k/n',
      );
    }
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError('--shard auto: no shard total', 'pass --shard-total <n> or set U21_SHARD_TOTAL');
    return checked({ k: Number(index) + 1, n }, `auto (index ${index})`);
  }
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!match)
    throw new UsageError(
      `--shard: "${text}" is not k/n`,
      'write it as k/n, e.g. 3/8 for the third of eight shards, or auto',
    );
  return checked({ k: Number(match[1]), n: Number(match[2]) }, text);
}

function checked(shard: Shard, given: string): Shard {
  if (shard.n < 1 || shard.k < 1 || shard.k > shard.n) {
    throw new UsageError(`--shard: ${given} is out of range (shard ${shard.k} of ${shard.n})`, 'k must be from 1 to n');
  }
  return shard;
}

/** Which shard a file belongs to: a stable hash of its entity and its path below the input root. */
export function shardOf(entityId: string, key: string, n: number): number {
  const digest = createHash('sha1')
    .update(`${entityId}\0${key.replace(/\\/g, '/')}`)
    .digest();
  return (digest.readUInt32BE(0) % n) + 1;
}

/** `journal.jsonl` → `journal.3-of-8.jsonl`; a `{shard}` in the name is replaced instead. */
export function shardFileName(path: string, shard: Shard): string {
  const tag = `${shard.k}-of-${shard.n}`;
  if (path.includes('{shard}')) return path.replaceAll('{shard}', tag);
  const dot = path.lastIndexOf('.');
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return dot > slash + 1 ? `${path.slice(0, dot)}.${tag}${path.slice(dot)}` : `${path}.${tag}`;
}

/** A summary's `shard` field, `"3/8"`, when the run took one shard. */
export const shardField = (shard: Shard | undefined): { shard?: string } =>
  shard ? { shard: `${shard.k}/${shard.n}` } : {};
