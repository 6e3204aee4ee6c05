import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import fg from 'fast-glob';
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

const IGNORE = ['**/node_modules/**'];

/** Sidecars are read beside their file, never uploaded. */
function isSidecar(name: string, siblings: ReadonlySet<string>): boolean {
  return name.toLowerCase().endsWith('.json') && siblings.has(name.slice(0, -'.json'.length));
}

/** Expands files, directories (recursively) and fast-glob patterns into files, skipping dot-files, sidecars and node_modules. */
export async function discover(inputs: readonly string[], cwd: string): Promise<Discovery> {
  const files: FoundFile[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, FoundFile>();
  const add = (file: FoundFile) => {
    const earlier = seen.get(file.absPath);
    // Found twice: send once, and a file also named directly gets the stricter checks.
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
        await walk(input, absInput, add, problems);
      } else if (basename(input).startsWith('.')) {
        problems.push({ path: input, message: 'dot-files are never uploaded; rename the file' });
      } else {
        add({ path: input, absPath: absInput, explicit: true });
      }
    } else if (fg.isDynamicPattern(input)) {
      const matches = await expand(input, cwd, problems);
      if (matches?.length === 0) {
        problems.push({ path: input, message: 'the pattern matches no file; check it, and quote it so the shell leaves it to u21-media' });
      }
      for (const match of matches ?? []) add({ path: match, absPath: resolve(cwd, match), explicit: false });
    } else if (stats.code === 'ENOENT' || stats.code === 'ENOTDIR') {
      problems.push({ path: input, message: 'no such file or directory' });
    } else {
      problems.push({ path: input, message: `cannot read it (${stats.code ?? stats.message})` });
    }
  }
  return { files, problems };
}

async function walk(input: string, absDir: string, add: (f: FoundFile) => void, problems: Problem[]) {
  const entries = await expand('**/*', absDir, problems, input);
  for (const rel of entries ?? []) add({ path: join(input, rel), absPath: join(absDir, rel), explicit: false });
}

/** fast-glob, sorted for a stable plan; undefined after reporting an unreadable directory. */
async function expand(pattern: string, cwd: string, problems: Problem[], label = pattern) {
  try {
    const matches = await fg(pattern, { cwd, dot: false, onlyFiles: true, ignore: IGNORE, followSymbolicLinks: true });
    const names = new Set(matches);
    return matches.filter((m) => !isSidecar(m, names)).sort();
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    problems.push({ path: err.path ?? label, message: `cannot read it (${err.code ?? err.message})` });
    return undefined;
  }
}
