import { opendir, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import type { Options } from 'fast-glob';
import type { Problem } from './errors.js';
import { sidecarOwnerOf, sidecarPathOf, type FileMetadata } from './sidecar.js';

/** A file found from the user's path arguments or a manifest row. */
export interface FoundFile {
  /** As the user would write it: the argument joined with the path below it. */
  path: string;
  absPath: string;
  /** Named directly (refused when unsupported) rather than found by a walk or glob (skipped). */
  explicit: boolean;
  /** Its path below the input root (the folder walked, the working folder, or the manifest's folder): what --shard hashes. */
  key: string;
  /** Whether `<file>.json` exists beside it, when the walk already knows; undefined = look. */
  hasSidecar?: boolean;
  /** From a manifest row: its entity and metadata. */
  row?: { entityId: string; metadata: FileMetadata; where: string };
}

export type Found = { kind: 'found'; file: FoundFile } | { kind: 'problem'; problem: Problem };

const GLOB_OPTIONS: Options = {
  dot: false,
  // Like a folder walk: entries that are not folders (files, and links, pipes and sockets,
  // which preflight reports rather than letting them vanish); links to folders not followed.
  onlyFiles: false,
  markDirectories: true,
  followSymbolicLinks: false,
  ignore: ['**/node_modules/**'],
};

// Loaded on the first pattern: most runs name files and folders only.
const loadGlob = async () => (await import('fast-glob')).default;

/** Dot-files and node_modules are never uploaded, however they are named. */
const isExcludedName = (name: string) => (name.startsWith('.') && name !== '.' && name !== '..') || name === 'node_modules';

function isExcluded(relativePath: string): boolean {
  return relativePath.split(/[\\/]/).some(isExcludedName);
}

/** The same, judged only below the working folder: `/home/me/.cache/x.jpg` named in full is not a dot-file. */
function isExcludedBelow(cwd: string, absPath: string): boolean {
  const rel = relative(cwd, absPath);
  return rel.startsWith('..') || isAbsolute(rel) ? isExcluded(basename(absPath)) : isExcluded(rel);
}

/** A sidecar is `<file>.json` beside its file; the walk skips it (checked on demand, not held in memory). */
async function isSidecar(absPath: string): Promise<boolean> {
  const owner = sidecarOwnerOf(absPath);
  return owner !== undefined && stat(owner).then((s) => s.isFile(), () => false);
}

/**
 * Expands files, folders (recursively) and fast-glob patterns into files, lazily: a folder of
 * 300,000 files is walked as the consumer pulls, never held whole. Files named directly come
 * first; a file reached twice is yielded once.
 */
export async function* discover(inputs: readonly string[], cwd: string): AsyncGenerator<Found> {
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
  for (const input of inputs) {
    const absInput = resolve(cwd, input);
    const stats = await stat(absInput).catch((error: NodeJS.ErrnoException) => error);
    if (!(stats instanceof Error)) {
      if (stats.isDirectory()) walks.push({ input, pattern: '**/*', base: absInput, isFolder: true });
      else if (isExcludedBelow(cwd, absInput)) yield problem(input, 'dot-files and node_modules are never uploaded; move or rename the file');
      else if (firstTime(absInput)) yield { kind: 'found', file: { path: input, absPath: absInput, explicit: true, key: relative(cwd, absInput) } };
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
      const entries = walk.isFolder ? walkFolder(walk.base, '') : globEntries(walk.pattern, walk.base);
      for await (const entry of entries) {
        count++;
        const absPath = resolve(walk.base, entry.rel);
        if (!firstTime(absPath)) continue;
        const path = walk.isFolder ? join(walk.input, entry.rel) : entry.rel;
        yield { kind: 'found', file: { path, absPath, explicit: false, key: walk.isFolder ? entry.rel : relative(cwd, absPath), ...(entry.hasSidecar !== undefined && { hasSidecar: entry.hasSidecar }) } };
      }
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      yield problem(err.path ?? walk.input, `cannot read it (${err.code ?? err.message})`);
      continue;
    }
    if (count === 0) {
      yield walk.isFolder
        ? problem(walk.input, 'the folder holds no files; check the path')
        : problem(walk.input, 'the pattern matches no file; check it (a folder name with ( ) [ ] { } * ? needs a \\ before those characters)');
    }
  }
}

interface Entry {
  rel: string;
  hasSidecar?: boolean;
}

/**
 * Walks a folder depth-first in name order, one folder listing in memory at a time. Skips
 * dot-entries and node_modules, does not follow links to folders (no loops), and knows from
 * the listing which files have a sidecar, so preflight need not look for one.
 */
async function* walkFolder(base: string, rel: string): AsyncGenerator<Entry> {
  const dir = await opendir(join(base, rel));
  const files: string[] = [];
  const folders: string[] = [];
  for await (const dirent of dir) {
    if (isExcludedName(dirent.name)) continue;
    (dirent.isDirectory() ? folders : files).push(dirent.name);
  }
  const names = new Set(files);
  for (const name of files.sort()) {
    const owner = sidecarOwnerOf(name);
    if (owner !== undefined && names.has(owner)) continue;
    yield { rel: join(rel, name), hasSidecar: names.has(sidecarPathOf(name)) };
  }
  for (const name of folders.sort()) yield* walkFolder(base, join(rel, name));
}

/** Files a fast-glob pattern matches, lazily; sidecars are recognised by a look beside them. */
async function* globEntries(pattern: string, cwd: string): AsyncGenerator<Entry> {
  const fg = await loadGlob();
  for await (const match of fg.stream(pattern, { ...GLOB_OPTIONS, cwd })) {
    const rel = String(match);
    const absPath = resolve(cwd, rel);
    if (rel.endsWith('/') || isExcludedBelow(cwd, absPath) || (await isSidecar(absPath))) continue;
    yield { rel };
  }
}
