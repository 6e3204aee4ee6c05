import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

/** Each source file (its path below src/, with `/`) and the source files it imports. */
type Graph = ReadonlyMap<string, readonly string[]>;
/** Each folder with a README (below src/, '' for src itself) and the entries of its `May import:` line. */
type Rules = ReadonlyMap<string, readonly string[]>;

/** Every cycle, one per strongly connected group (Tarjan), as its files in import order with the first repeated at the end. */
function findCycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const groups: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (stack.includes(next)) low.set(file, Math.min(low.get(file)!, index.get(next)!));
    }
    if (low.get(file) !== index.get(file)) return;
    const group = stack.splice(stack.indexOf(file));
    if (group.length > 1 || graph.get(file)?.includes(file)) groups.push(group);
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return groups.map((group) => cycleThrough(graph, new Set(group), group[0]!));
}

/** The shortest way from `start` back to itself inside its group. */
function cycleThrough(graph: Graph, group: ReadonlySet<string>, start: string): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let at = 0; at < queue.length; at++) {
    for (const next of graph.get(queue[at]!) ?? []) {
      if (!group.has(next)) continue;
      if (next === start) {
        const path: string[] = [];
        for (let file = queue[at]!; file !== start; file = cameFrom.get(file)!) path.unshift(file);
        return [start, ...path, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, queue[at]!);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

/** The folder whose README rules a file: its own, or the nearest above it that has one. */
function ruleFolder(file: string, rules: Rules): string | undefined {
  for (let folder = posix.dirname(file); ; folder = posix.dirname(folder)) {
    const key = folder === '.' ? '' : folder;
    if (rules.has(key)) return key;
    if (key === '') return undefined;
  }
}

/** An entry allows a file (`core/files/sniff.ts`, also written without `.ts`) or a folder and all below it (`core/shared`). */
const allows = (entry: string, file: string) =>
  file === entry || file === `${entry}.ts` || file.startsWith(`${entry}/`);

/** Every import between folders that the importing file's README does not allow; a file may always import its own folder's files. */
function forbiddenImports(
  graph: Graph,
  rules: Rules,
): Array<{ file: string; imported: string; readme: string | undefined }> {
  const forbidden = [];
  for (const [file, imports] of graph) {
    const folder = ruleFolder(file, rules);
    for (const imported of imports) {
      if (posix.dirname(imported) === posix.dirname(file)) continue;
      if (folder !== undefined && rules.get(folder)!.some((entry) => allows(entry, imported))) continue;
      forbidden.push({ file, imported, readme: folder });
    }
  }
  return forbidden;
}

const SRC = join(ROOT, 'src');
const below = (folder: string): string[] =>
  readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? below(join(folder, entry.name)) : [join(folder, entry.name)],
  );
const srcPath = (path: string) => relative(SRC, path).split(sep).join('/');

/** src's import graph: static, type-only and `import()` imports alike (ts.preProcessFile), by the `.ts` file each names. */
function sourceGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const path of below(SRC).filter((p) => p.endsWith('.ts'))) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path, 'utf8'), true, true);
    const imports = importedFiles
      .filter(({ fileName }) => fileName.startsWith('.'))
      .map(({ fileName }) => join(dirname(path), fileName.replace(/\.js$/, '.ts')));
    for (const target of imports)
      expect(existsSync(target), `${srcPath(path)} imports ${target}, which is not a file`).toBe(true);
    graph.set(srcPath(path), [...new Set(imports.map(srcPath))]);
  }
  return graph;
}

/** The `May import:` line of every README.md below src. */
function sourceRules(): Map<string, string[]> {
  const rules = new Map<string, string[]>();
  for (const readme of below(SRC).filter((p) => p.endsWith(`${sep}README.md`))) {
    const line = /^May import: (.+)$/m.exec(readFileSync(readme, 'utf8'));
    expect(line, `${srcPath(readme)} has no "May import:" line`).not.toBeNull();
    const entries =
      line![1]!.trim() === 'nothing in src' ? [] : line![1]!.split(',').map((e) => e.trim().replace(/^src\//, ''));
    rules.set(srcPath(dirname(readme)).replace(/^\.$/, ''), entries);
  }
  return rules;
}

describe('the checker', () => {
  it('names the files of a cycle in import order', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts', 'd.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    expect(findCycles(graph)).toEqual([
      ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
      ['e.ts', 'e.ts'],
    ]);
    expect(
      findCycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('finds an import the README does not allow, and allows its own folder, listed files and listed folders', () => {
    const graph = new Map([
      ['low/a.ts', ['low/b.ts', 'high/x.ts']],
      ['low/b.ts', []],
      ['high/x.ts', ['low/a.ts', 'mid/m.ts', 'top.ts']],
      ['high/deep/y.ts', ['low/b.ts']],
      ['mid/m.ts', ['low/b.ts']],
      ['top.ts', []],
    ]);
    const rules = new Map([
      ['low', []],
      ['high', ['low', 'mid/m.ts']],
    ]);
    expect(forbiddenImports(graph, rules)).toEqual([
      { file: 'low/a.ts', imported: 'high/x.ts', readme: 'low' },
      { file: 'high/x.ts', imported: 'top.ts', readme: 'high' },
      { file: 'mid/m.ts', imported: 'low/b.ts', readme: undefined },
    ]);
  });
});

describe('src', () => {
  const graph = sourceGraph();

  it('has no import cycle', () => {
    const cycles = findCycles(graph).map((cycle) => cycle.map((file) => `src/${file}`).join(' → '));
    expect(cycles, `import cycles (move what both files need where both can import it):\n${cycles.join('\n')}`).toEqual(
      [],
    );
  });

  it('imports only what each folder README allows', () => {
    const rules = sourceRules();
    expect(rules.size).toBeGreaterThan(10);
    const problems = forbiddenImports(graph, rules).map(({ file, imported, readme }) =>
      readme === undefined
        ? `src/${file} imports src/${imported}, and no README.md above it says what it may import`
        : `src/${file} imports src/${imported}, which the "May import:" line of ${posix.join('src', readme, 'README.md')} does not allow: change the import, or that line`,
    );
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
