import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import fg, { type Options } from 'fast-glob';
import type { Problem } from './errors.js';

/** A file found from the user's path arguments. */
export interface FoundFile {
  /** As the user would write it: the argument joined with the path below it. */
  path: string;
  absPath: string;
  /** Named directly (refused when unsupported) rather than found by a walk or glob (skipped). */
  explicit: boolean;
}

export interface Discovery {
  files: FoundFile[];
  problems: Problem[];
}

const GLOB_OPTIONS: Options = {
  dot: false,
  // Entries that are not folders: files, and also links, pipes and sockets, which preflight
  // reports rather than letting them vanish. Links to folders are not followed (no loops).
  onlyFiles: false,
  markDirectories: true,
  followSymbolicLinks: false,
  ignore: ['**/node_modules/**'],
};

/** Dot-files and node_modules are never uploaded, however they are named. */
function isExcluded(relativePath: string): boolean {
  return relativePath.split(/[\\/]/).some((part) => (part.startsWith('.') && part !== '.' && part !== '..') || part === 'node_modules');
}

/** Sidecars (`<file>.json` beside a file) are read with their file, never uploaded. */
function isSidecar(name: string, siblings: ReadonlySet<string>): boolean {
  return name.endsWith('.json') && siblings.has(name.slice(0, -'.json'.length));
}

/** Expands files, folders (recursively) and fast-glob patterns into files. */
export async function discover(inputs: readonly string[], cwd: string): Promise<Discovery> {
  const files: FoundFile[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, FoundFile>();
  const add = (file: FoundFile) => {
    const earlier = seen.get(file.absPath);
    // Found twice: sent once, and a file also named directly gets the stricter checks.
    if (earlier) earlier.explicit ||= file.explicit;
    else {
      seen.set(file.absPath, file);
      files.push(file);
    }
  };

  for (const input of inputs) {
    const absInput = resolve(cwd, input);
    const stats = await stat(absInput).catch((error: NodeJS.ErrnoException) => error);
    if (!(stats instanceof Error)) {
      if (stats.isDirectory()) {
        const entries = await expand('**/*', absInput, problems, input);
        if (entries?.length === 0) problems.push({ path: input, message: 'the folder holds no files; check the path' });
        for (const rel of entries ?? []) add({ path: join(input, rel), absPath: join(absInput, rel), explicit: false });
      } else if (isExcluded(input) || basename(input).startsWith('.')) {
        problems.push({ path: input, message: 'dot-files and node_modules are never uploaded; move or rename the file' });
      } else {
        add({ path: input, absPath: absInput, explicit: true });
      }
    } else if (fg.isDynamicPattern(input)) {
      const matches = await expand(input, cwd, problems);
      if (matches?.length === 0) {
        problems.push({ path: input, message: 'the pattern matches no file; check it (a folder name with ( ) [ ] { } * ? needs a \\ before those characters)' });
      }
      for (const match of matches ?? []) add({ path: match, absPath: resolve(cwd, match), explicit: false });
    } else if (stats.code === 'ENOENT' || stats.code === 'ENOTDIR') {
      problems.push({ path: input, message: 'no such file or folder' });
    } else {
      problems.push({ path: input, message: `cannot read it (${stats.code ?? stats.message})` });
    }
  }
  return { files, problems };
}

/** fast-glob, without folders, dot-files, node_modules or sidecars, sorted for a stable plan; undefined after reporting an unreadable folder. */
async function expand(pattern: string, cwd: string, problems: Problem[], label = pattern) {
  try {
    const entries = await fg(pattern, { ...GLOB_OPTIONS, cwd });
    const names = new Set(entries);
    return entries.filter((e) => !e.endsWith('/') && !isExcluded(e) && !isSidecar(e, names)).sort();
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    problems.push({ path: err.path ?? label, message: `cannot read it (${err.code ?? err.message})` });
    return undefined;
  }
}
