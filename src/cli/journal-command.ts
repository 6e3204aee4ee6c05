import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../core/shared/errors.js';
import { checkedOrg, resolveApiRoot } from '../core/connection/hosts.js';
import { journalLines } from '../core/journal/journal.js';
import type { JournalRecord, OutcomeRecord } from '../core/journal/records.js';
import { OBJECT_NAME } from '../core/inputs/route.js';
import { JournalLock } from '../core/journal/lock.js';
import { defaultJournalName, stateDir } from '../core/journal/place.js';
import { count, formatBytes, plural, unansweredCase } from './format.js';
import type { Io } from './io.js';
import { resolveSettings } from './settings.js';

/** How `journal show` and `journal forget` are told which journal: a path, or the run's own settings. */
export interface JournalFlags {
  org?: string;
  env?: string;
  baseUrl?: string;
  entity?: string;
  run?: string;
  /** `journal show`: only files sent without an answer (flagged possibly_duplicated). */
  possiblyDuplicated?: boolean;
}

const write = (io: Io, line: string) => io.out.line(line);

/** `u21-media journal list`: the default journals in the state folder, newest first. */
export async function runJournalList(io: Io): Promise<number> {
  const dir = stateDir(io.env);
  const names = dir === undefined ? [] : await readdir(dir).catch(() => [] as string[]);
  const journals = await Promise.all(
    names
      .filter((name) => name.endsWith('.jsonl'))
      .map(async (name) => ({ path: join(dir!, name), stats: await stat(join(dir!, name)) })),
  );
  if (journals.length === 0) {
    write(io, `no journals in ${dir ?? 'the state folder (neither XDG_STATE_HOME nor HOME is set)'}`);
    return 0;
  }
  journals.sort((a, b) => b.stats.mtimeMs - a.stats.mtimeMs);
  write(io, `${'last written'.padEnd(24)}  ${'size'.padStart(9)}  journal`);
  for (const { path, stats } of journals)
    write(io, `${stats.mtime.toISOString()}  ${formatBytes(stats.size).padStart(9)}  ${path}`);
  return 0;
}

/** `u21-media journal show`: what a journal holds, run by run; with --entity, --run or --possibly-duplicated, each file they pick. */
export async function runJournalShow(file: string | undefined, flags: JournalFlags, io: Io): Promise<number> {
  const path = await journalOf('show', file, flags, io);
  const listing = flags.entity !== undefined || flags.run !== undefined || flags.possiblyDuplicated === true;
  const picked = (record: OutcomeRecord) =>
    (flags.entity === undefined || record.entity_id === flags.entity) &&
    (flags.run === undefined || record.run === flags.run) &&
    (!flags.possiblyDuplicated || record.possibly_duplicated === true);
  const runs = new Map<string, { first: string; last: string; uploaded: number; failed: number }>();
  const entities = new Set<string>();
  let unusable = 0;
  let listed = 0;
  for await (const { record, text } of journalLines(path)) {
    if (!record) {
      if (text?.trim() !== '') unusable++;
      continue;
    }
    if (record.outcome === 'sending') continue;
    if (listing) {
      if (picked(record)) {
        listed++;
        write(io, fileLine(record, flags.entity === undefined));
      }
      continue;
    }
    const run = runs.get(record.run ?? '') ?? { first: record.time, last: record.time, uploaded: 0, failed: 0 };
    run.last = record.time;
    run[record.outcome]++;
    runs.set(record.run ?? '', run);
    if (record.outcome === 'uploaded') entities.add(record.entity_id);
  }
  if (!listing) {
    const uploaded = [...runs.values()].reduce((sum, run) => sum + run.uploaded, 0);
    write(
      io,
      `${path}: ${plural(uploaded, 'upload')} to ${count(entities.size)} ${entities.size === 1 ? 'entity' : 'entities'} in ${plural(runs.size, 'run')}`,
    );
    for (const [id, run] of runs) {
      write(
        io,
        `  ${(id || '(no run id)').padEnd(24)} ${run.first} → ${run.last}  ${count(run.uploaded)} uploaded${run.failed ? `, ${count(run.failed)} failed` : ''}`,
      );
    }
  }
  // A mistyped id must not read as "nothing of that kind".
  if (listing && listed === 0)
    io.err.line(
      `u21-media: ${path}: no records ${[flags.entity !== undefined && `of entity ${flags.entity}`, flags.run !== undefined && `of run ${flags.run}`, flags.possiblyDuplicated && 'of a file sent without an answer'].filter(Boolean).join(', ')}`,
    );
  if (unusable > 0) io.err.line(`u21-media: ${path}: ${plural(unusable, 'line')} not a journal record, skipped`);
  return 0;
}

/** A file's record; `withTarget`: its path and where it went, when the listing is not of one entity. */
const fileLine = (r: OutcomeRecord, withTarget: boolean) =>
  [
    r.time,
    r.outcome.padEnd(8),
    withTarget ? `${r.path} → ${r.object ? `${OBJECT_NAME[r.object]} ` : ''}${r.entity_id}` : r.name,
    r.media_type ?? '(no media_type)',
    formatBytes(r.bytes),
    r.sha256 ? `sha256 ${r.sha256.slice(0, 12)}` : '',
    r.run ?? '',
    r.possibly_duplicated ? `(${unansweredCase(r.outcome)})` : '',
  ]
    .filter(Boolean)
    .join('  ');

/**
 * `u21-media journal forget`: takes an entity's or a run's records out of the journal, so the
 * next run sends those files again (after `delete-all-media`, say). The journal is rewritten
 * beside itself and renamed over, under its lock: a run cannot be writing it meanwhile.
 */
export async function runJournalForget(file: string | undefined, flags: JournalFlags, io: Io): Promise<number> {
  if ((flags.entity === undefined) === (flags.run === undefined))
    throw new UsageError('journal forget: give --entity <id> or --run <id>', 'one of the two: what to forget');
  const path = await journalOf('forget', file, flags, io);
  const matches = (record: JournalRecord) =>
    flags.entity !== undefined ? record.entity_id === flags.entity : record.run === flags.run;
  const lock = await JournalLock.acquire(path, { asker: { name: 'journal forget', otherwise: 'then run this again' } });
  const temporary = `${path}.forget-${process.pid}`;
  let forgotten = 0;
  let uploads = 0;
  try {
    const out = createWriteStream(temporary, { flags: 'wx', mode: 0o600 });
    for await (const { record, text } of journalLines(path)) {
      if (record && matches(record)) {
        forgotten++;
        if (record.outcome === 'uploaded') uploads++;
      } else if (text !== undefined && !out.write(`${text}\n`)) {
        await once(out, 'drain');
      }
    }
    out.end();
    await finished(out);
    // On disk before it replaces the journal: a crash must leave the old journal or the new one.
    const written = await open(temporary, 'r+');
    await written.sync().finally(() => written.close());
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  } finally {
    await lock.release();
  }
  const what = flags.entity !== undefined ? `entity ${flags.entity}` : `run ${flags.run}`;
  write(
    io,
    forgotten === 0
      ? `${path}: nothing recorded for ${what}`
      : `${path}: forgot ${plural(forgotten, 'record')} of ${what} (${plural(uploads, 'upload')}); the next run sends those files again`,
  );
  return 0;
}

/** The journal a command means: the path given, else the one an upload with the same settings would use. */
async function journalOf(
  command: 'show' | 'forget',
  file: string | undefined,
  flags: JournalFlags,
  io: Io,
): Promise<string> {
  const path = file ?? (await defaultJournalOf(flags, io));
  const stats = await stat(resolve(io.cwd, path)).catch(() => undefined);
  if (!stats?.isFile())
    throw new UsageError(
      `${path}: no such journal`,
      `see \`u21-media journal list\`; a journal the runs were given by path is named so: u21-media journal ${command} <file>`,
    );
  return resolve(io.cwd, path);
}

async function defaultJournalOf(flags: JournalFlags, io: Io): Promise<string> {
  const given = Object.fromEntries(
    Object.entries({ org: flags.org, env: flags.env, baseUrl: flags.baseUrl }).filter(
      ([, value]) => value !== undefined,
    ),
  );
  const settings = await resolveSettings(given, io.env, io.cwd);
  if (typeof settings.journal === 'string') return settings.journal;
  if (settings.org === undefined)
    throw new UsageError(
      'journal: which journal? give its path, or the --org (and --env or --base-url) of the runs that wrote it',
      'see `u21-media journal list`',
    );
  const dir = stateDir(io.env);
  if (dir === undefined)
    throw new UsageError('no state folder: neither XDG_STATE_HOME nor HOME is set', "give the journal's path");
  return join(dir, defaultJournalName(resolveApiRoot(settings), checkedOrg(settings.org)));
}
