import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseShard, shardFileName } from '../../src/core/inputs/shard.js';
import { startSandbox } from '../../src/sandbox/server.js';
import { closeAfter, planned, runCli, tempDir, toSandbox, validContent } from '../helpers.js';

/** 1,000 small files in 20 customer folders, plus a manifest listing them. */
async function backfill(): Promise<string> {
  const dir = await tempDir();
  const rows = ['path,entity_id'];
  for (let c = 0; c < 20; c++) {
    await mkdir(join(dir, `cust-${c}`));
    for (let i = 0; i < 50; i++) {
      const name = `doc_${i}.png`;
      await writeFile(join(dir, `cust-${c}`, name), validContent(name, `png ${c} ${i}`));
      rows.push(`cust-${c}/${name},cust-${c}`);
    }
  }
  await writeFile(join(dir, 'manifest.csv'), rows.join('\n'));
  await writeFile(join(dir, 'reversed.csv'), [rows[0], ...rows.slice(1).reverse()].join('\n'));
  return dir;
}

const paths = async (options: Parameters<typeof planned>[0]) =>
  (await planned(options)).files.map((f) => f.path.replace(/^\.\//, '')).sort();

describe('--shard', () => {
  it.each([1, 2, 7])('splits 1,000 files into %i disjoint shards whose union is the whole set', async (n) => {
    const dir = await backfill();
    const all = await paths({ paths: ['.'], entityFrom: 'dir', cwd: dir });
    expect(all).toHaveLength(1000);
    const shards = await Promise.all(
      Array.from({ length: n }, (_, i) => paths({ paths: ['.'], entityFrom: 'dir', cwd: dir, shard: { k: i + 1, n } })),
    );
    expect(shards.flat().sort()).toEqual(all);
    expect(new Set(shards.flat()).size).toBe(1000);
    if (n > 1) for (const shard of shards) expect(shard.length).toBeGreaterThan(1000 / n / 2);
  });

  it('gives the same split whatever the listing order or the glob that finds the files', async () => {
    const dir = await backfill();
    const shard = { k: 2, n: 7 };
    const walked = await paths({ paths: ['.'], entityFrom: 'dir', cwd: dir, shard });
    expect(await paths({ paths: ['**/*.png'], entityFrom: 'dir', cwd: dir, shard })).toEqual(walked);
    expect(await paths({ paths: ['cust-*/doc_*.png'], entityFrom: 'dir', cwd: dir, shard })).toEqual(walked);
    const fromManifest = await paths({ manifest: join(dir, 'manifest.csv'), shard });
    const fromReversed = await paths({ manifest: join(dir, 'reversed.csv'), shard });
    expect(fromReversed).toEqual(fromManifest);
    expect(fromManifest.map((p) => p.replace(`${dir}/`, ''))).toEqual(walked);
  });

  it('reads the shard from Kubernetes and AWS Batch job indexes', () => {
    expect(parseShard('3/8', {})).toEqual({ k: 3, n: 8 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '0', U21_SHARD_TOTAL: '4' })).toEqual({ k: 1, n: 4 });
    expect(parseShard('auto', { AWS_BATCH_JOB_ARRAY_INDEX: '5' }, 6)).toEqual({ k: 6, n: 6 });
    expect(() => parseShard('auto', {})).toThrow(/no job index/);
    expect(() => parseShard('auto', { JOB_COMPLETION_INDEX: '8' }, 8)).toThrow(/out of range/);
    expect(() => parseShard('0/3', {})).toThrow(/out of range/);
    expect(() => parseShard('three', {})).toThrow(/is not k\/n/);
  });

  it('names per-shard files', () => {
    expect(shardFileName('out/journal.jsonl', { k: 3, n: 8 })).toBe('out/journal.3-of-8.jsonl');
    expect(shardFileName('report', { k: 1, n: 2 })).toBe('report.1-of-2');
    expect(shardFileName('r-{shard}.csv', { k: 1, n: 2 })).toBe('r-1-of-2.csv');
  });

  it('merged shard reports add up to the unsharded totals', async () => {
    const dir = await backfill();
    await writeFile(join(dir, 'cust-3', 'notes.docx'), 'x');
    const server = closeAfter(await startSandbox({ entities: Array.from({ length: 19 }, (_, c) => `cust-${c}`) })); // cust-19 missing
    const env = { U21_API_KEY: server.apiKey };
    const args = ['upload', '.', '--entity-from', 'dir', ...toSandbox(server), '--json'];
    const out = await tempDir();
    const whole = await runCli([...args, '--report', join(out, 'whole.csv')], { cwd: dir, env });
    // 1,000 documents, the two manifests and the .docx (skipped as unsupported).
    expect(whole.events.at(-1)).toMatchObject({ total: 1003, uploaded: 950, failed: 50, skipped: 3 });

    for (const k of [1, 2, 3]) {
      const shard = await runCli([...args, '--shard', `${k}/3`, '--report', join(out, 'report.csv')], {
        cwd: dir,
        env,
      });
      expect(shard.events.at(-1)).toMatchObject({ shard: `${k}/3` });
    }
    const merged = await runCli(
      ['report', 'merge', 'report.1-of-3.csv', 'report.2-of-3.csv', 'report.3-of-3.csv', '--output', 'merged.json'],
      { cwd: out },
    );
    expect(merged.code).toBe(1); // some files failed
    expect(merged.stdout).toMatch(/^1,003 files from 3 reports: 950 uploaded, 50 failed, 3 skipped/);
    const rows = JSON.parse(await readFile(join(out, 'merged.json'), 'utf8')) as Array<{ path: string }>;
    expect(new Set(rows.map((r) => r.path)).size).toBe(1003);
  }, 60_000);
});
