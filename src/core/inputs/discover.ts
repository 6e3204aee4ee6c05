import { lstat, opendir, readdir, realpath, stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Options } from 'fast-glob';
import { sidecarOwnerOf, sidecarPathOf } from '../files/sidecar.js';
import { withDescriptor } from '../files/descriptors.js';
import { isS3Url } from '../s3/url.js';
import { isExcluded, isExcludedName, type Found, type FoundFile, type WalkVerdict } from './found.js';
import type { ObjectStore } from '../s3/store.js';

export interface DiscoverOptions {
  /** Follow links whose target is outside the folder walked or the glob's base (--follow-links). */
  followLinks?: boolean;
  /** The run's S3 client, opened on the first s3:// argument. */
  objectStore?: () => Promise<ObjectStore>;
}

const GLOB_OPTIONS: Options = {
  dot: false,
  // Like a folder walk: entries that are not folders (files, and links, pipes and sockets,
  // which preflight reports rather than letting them vanish); links to folders not followed.
  onlyFiles: false,
  markDirectories: true,
  followSymbolicLinks: false,
  objectMode: true,
  ignore: ['**/node_modules/**'],
};

// Loaded on the first pattern: most runs name files and folders only.
const loadGlob = async () => (await import('fast-glob')).default;

/** The same, judged only below the working folder: `/home/me/.cache/x.jpg` named in full is not a dot-file. */
function isExcludedBelow(cwd: string, absPath: string): boolean {
  const rel = relative(cwd, absPath);
  return rel.startsWith('..') || isAbsolute(rel) ? isExcluded(basename(absPath)) : isExcluded(rel);
}

/**
 * Expands files, folders (recursively) and fast-glob patterns into files, lazily: a folder of
 * 300,000 files is walked as the consumer pulls, never held whole. Files named directly come
 * first; a file reached twice is yielded once. A link met on a walk or a glob is followed only
 * when its target is inside the folder walked (or the glob's base), unless followLinks.
 */
export async function* discover(
  inputs: readonly string[],
  cwd: string,
  options: DiscoverOptions = {},
): AsyncGenerator<Found> {
  // Remembering every path costs memory; it is needed only when inputs can overlap.
  const seen = inputs.length > 1 ? new Set<string>() : undefined;
  const firstTime = (absPath: string) => {
    if (!seen) return true;
    if (seen.has(absPath)) return false;
    seen.add(absPath);
    return true;
  };
  const problem = (path: string, message: string): Found => ({ kind: 'problem', problem: { path, message } });

  const walks: Array<{ input: string; pattern: string; base: string; isFolder: boolean }> = [];
  const objectInputs = inputs.filter(isS3Url);
  for (const input of inputs) {
    if (isS3Url(input)) continue;
    const absInput = resolve(cwd, input);
    const stats = await stat(absInput).catch((error: NodeJS.ErrnoException) => error);
    if (!(stats instanceof Error)) {
      if (stats.isDirectory()) walks.push({ input, pattern: '**/*', base: absInput, isFolder: true });
      else if (isExcludedBelow(cwd, absInput))
        yield problem(input, 'dot-files and node_modules are never uploaded; move or rename the file');
      else if (firstTime(absInput))
        yield { kind: 'found', file: { path: input, absPath: absInput, explicit: true, key: relative(cwd, absInput) } };
    } else if ((await loadGlob()).isDynamicPattern(input)) {
      walks.push({ input, pattern: input, base: cwd, isFolder: false });
    } else if (stats.code === 'ENOENT' || stats.code === 'ENOTDIR') {
      yield problem(input, 'no such file or folder');
    } else {
      yield problem(input, `cannot read it (${stats.code ?? stats.message})`);
    }
  }

  for (const walk of walks) {
    let count = 0;
    try {
      const root = walk.isFolder ? walk.base : await globRoot(walk.pattern, walk.base);
      const links = new LinkJudge(
        root,
        walk.isFolder ? walk.input : relative(cwd, root) || '.',
        options.followLinks ?? false,
      );
      const entries = walk.isFolder ? walkFolder(walk.base, links) : globEntries(walk.pattern, walk.base, links);
      for await (const entry of entries) {
        count++;
        const absPath = resolve(walk.base, entry.rel);
        if (!firstTime(absPath)) continue;
        const path = walk.isFolder ? join(walk.input, entry.rel) : entry.rel;
        const file: FoundFile = {
          path,
          absPath,
          explicit: false,
          key: walk.isFolder ? entry.rel : relative(cwd, absPath),
        };
        if (entry.hasSidecar !== undefined) file.hasSidecar = entry.hasSidecar;
        file.sidecarJudged = true;
        if (entry.verdict) file.verdict = entry.verdict;
        yield { kind: 'found', file };
      }
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      yield problem(err.path ?? walk.input, `cannot read it (${err.code ?? err.message})`);
      continue;
    }
    if (count === 0) {
      yield walk.isFolder
        ? problem(walk.input, 'the folder holds no files; check the path')
        : problem(
            walk.input,
            'the pattern matches no file; check it (a folder name with ( ) [ ] { } * ? needs a \\ before those characters)',
          );
    }
  }
  // Loaded only for s3:// arguments: a run of local files never loads the AWS SDK.
  if (objectInputs.length > 0)
    yield* (await import('./discover-objects.js')).discoverObjects(objectInputs, options.objectStore!);
}

interface Entry {
  rel: string;
  hasSidecar?: boolean;
  verdict?: WalkVerdict;
}

/** Decides, for each link met on one walk, whether it may be followed: only into the walk's own tree. */
class LinkJudge {
  private realRoot: Promise<string> | undefined;

  constructor(
    private readonly root: string,
    /** The root as the user named it, for messages. */
    private readonly shownRoot: string,
    private readonly followAll: boolean,
  ) {}

  /** The verdict on a link, or undefined when it may be followed (preflight then looks at its target). */
  judge(absPath: string, what = 'a link'): Promise<WalkVerdict | undefined> {
    this.realRoot ??= realpath(this.root);
    return judgeLink(absPath, { real: this.realRoot, shown: this.shownRoot }, what, this.followAll);
  }
}

/**
 * The one rule for a link, whatever found it: followed only when its target is inside `root`
 * (a walk's folder, a glob's base, a named file's own folder), unless followAll; a link to
 * nothing or in a loop is skipped.
 */
export async function judgeLink(
  absPath: string,
  root: { real: Promise<string> | string; shown: string },
  what = 'a link',
  followAll = false,
): Promise<WalkVerdict | undefined> {
  let target: string;
  try {
    target = await realpath(absPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR')
      return {
        skip: 'unsupported',
        message:
          code === 'ELOOP'
            ? `${what} in a loop, never reaching a file`
            : `${what} to nothing (broken, or the file vanished)`,
      };
    throw error;
  }
  if (followAll) return undefined;
  const realRoot = await root.real;
  if (target === realRoot || target.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return undefined;
  return {
    skip: 'link_outside',
    message: `${what} to ${target}, outside ${root.shown}; not followed (--follow-links follows it)`,
  };
}

/** The folder a glob pattern starts from: the static part of its path (of all its bases, for braces). */
async function globRoot(pattern: string, cwd: string): Promise<string> {
  const bases = (await loadGlob()).generateTasks([pattern], { cwd }).map((task) => resolve(cwd, task.base));
  return bases.reduce((common, base) => {
    while (!(base === common || base.startsWith(common.endsWith(sep) ? common : common + sep)))
      common = dirname(common);
    return common;
  });
}

/**
 * Walks a folder depth-first in name order, one folder listing in memory at a time, without
 * recursion (a tree 2,000 folders deep is walked like any other). Skips dot-entries and
 * node_modules, does not follow links to folders (no loops), judges links to files, and knows
 * from the listing which files have a sidecar, so preflight need not look for one.
 */
async function* walkFolder(base: string, links: LinkJudge): AsyncGenerator<Entry> {
  const pending = [''];
  for (let rel = pending.pop(); rel !== undefined; rel = pending.pop()) {
    const folder = join(base, rel);
    const files: string[] = [];
    const linked = new Set<string>();
    const folders: string[] = [];
    let undecodable = false;
    for await (const dirent of await withDescriptor(() => opendir(folder))) {
      if (isExcludedName(dirent.name)) continue;
      if (dirent.name.includes('\uFFFD')) undecodable = true;
      if (dirent.isDirectory()) folders.push(dirent.name);
      else {
        files.push(dirent.name);
        if (dirent.isSymbolicLink()) linked.add(dirent.name);
      }
    }
    // Sorted in place, and searched for sidecars: no copy and no set of a folder's names.
    files.sort();
    const has = (name: string) => isIn(files, name);
    const badNames = undecodable ? await namesNotUtf8(folder) : undefined;
    for (const name of files) {
      const owner = sidecarOwnerOf(name);
      if (owner !== undefined && has(owner)) continue;
      const sidecar = sidecarPathOf(name);
      const entry: Entry = { rel: join(rel, name), hasSidecar: has(sidecar) };
      const badName = badNames?.get(name);
      if (badName !== undefined)
        entry.verdict = { problem: `the file name is not valid UTF-8 (${join(rel, badName)}); rename it` };
      else if (linked.has(name)) entry.verdict = await links.judge(join(folder, name));
      if (!entry.verdict && entry.hasSidecar && linked.has(sidecar))
        entry.verdict = await sidecarLink(links, join(folder, sidecar), sidecar);
      if (!entry.verdict) delete entry.verdict;
      yield entry;
    }
    for (const name of folders.sort().reverse()) pending.push(join(rel, name));
  }
}

/** Whether `sorted` (in the default sort's order) holds `name`: a binary search. */
function isIn(sorted: readonly string[], name: string): boolean {
  let [low, high] = [0, sorted.length - 1];
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const found = sorted[middle]!;
    if (found === name) return true;
    if (found < name) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}

/** A sidecar that links out of the tree takes its file with it: its metadata would come from outside. */
async function sidecarLink(links: LinkJudge, absPath: string, name: string): Promise<WalkVerdict | undefined> {
  const verdict = await links.judge(absPath, `its sidecar ${name} is a link`);
  return verdict && 'skip' in verdict && verdict.skip === 'link_outside' ? verdict : undefined;
}

/**
 * The names in a folder that are not valid UTF-8, keyed by how they read once decoded (with
 * U+FFFD), with their bytes shown as `\xNN`. Listed only for a folder where such a name showed.
 */
async function namesNotUtf8(folder: string): Promise<Map<string, string>> {
  const bad = new Map<string, string>();
  for (const raw of await withDescriptor(() => readdir(folder, { encoding: 'buffer' }))) {
    if (isUtf8(raw)) continue;
    const shown = [...raw]
      .map((byte) =>
        byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`,
      )
      .join('');
    bad.set(raw.toString('utf8'), shown);
  }
  return bad;
}

/** Files a fast-glob pattern matches, lazily; links judged like a walk's, sidecars recognised by a look beside them. */
async function* globEntries(pattern: string, cwd: string, links: LinkJudge): AsyncGenerator<Entry> {
  const fg = await loadGlob();
  for await (const match of fg.stream(pattern, { ...GLOB_OPTIONS, cwd })) {
    const { path: rel, dirent } = match as unknown as { path: string; dirent: import('node:fs').Dirent };
    const absPath = resolve(cwd, rel);
    if (rel.endsWith('/') || isExcludedBelow(cwd, absPath)) continue;
    const owner = sidecarOwnerOf(absPath);
    if (
      owner !== undefined &&
      (await lstat(owner).then(
        (s) => !s.isDirectory(),
        () => false,
      ))
    )
      continue; // a sidecar
    if (
      rel.includes('\uFFFD') &&
      (await lstat(absPath).then(
        () => false,
        () => true,
      ))
    ) {
      yield { rel, verdict: { problem: 'the file name is not valid UTF-8; rename it' } };
      continue;
    }
    const sidecar = await lstat(sidecarPathOf(absPath)).catch(() => undefined);
    const entry: Entry = { rel, hasSidecar: sidecar !== undefined };
    // A file followed (a link inside the base, or no link) still takes its sidecar only from inside.
    let verdict = dirent.isSymbolicLink() ? await links.judge(absPath) : undefined;
    if (!verdict && sidecar?.isSymbolicLink())
      verdict = await sidecarLink(links, sidecarPathOf(absPath), basename(sidecarPathOf(absPath)));
    if (verdict) entry.verdict = verdict;
    yield entry;
  }
}
