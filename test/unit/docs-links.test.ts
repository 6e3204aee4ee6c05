import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

const README = join(ROOT, 'README.md');
const DOCS = join(ROOT, 'docs');
const DOC_FILES = readdirSync(DOCS)
  .filter((name) => name.endsWith('.md'))
  .map((name) => join(DOCS, name));

describe('docs', () => {
  it("keep the two set-up commands as the README's first lines", () => {
    const lines = readFileSync(README, 'utf8').split('\n');
    expect(lines.slice(0, 4)).toEqual([
      '# u21-media',
      '',
      '    npm ci && npm run demo     # upload fixtures/ to a built-in local Unit21 sandbox and show what it stored',
      '    npm ci && npm test         # build, then run the unit, API and end-to-end tests',
    ]);
  });

  it('keep the README a five-minute read: under 200 lines, the reference in docs/', () => {
    expect(readFileSync(README, 'utf8').split('\n').length).toBeLessThan(200);
  });

  it('link every file in docs/ from the README, and open each with a title', () => {
    const readmeLinks = new Set(relativeLinks(readFileSync(README, 'utf8')));
    expect(DOC_FILES.map((file) => relative(ROOT, file)).filter((path) => !readmeLinks.has(path))).toEqual([]);
    expect(
      DOC_FILES.filter((file) => !readFileSync(file, 'utf8').startsWith('# ')).map((file) => relative(ROOT, file)),
    ).toEqual([]);
  });

  it('have every relative link and #anchor lead somewhere', () => {
    const broken: string[] = [];
    for (const file of [README, ...DOC_FILES]) {
      for (const target of relativeLinks(readFileSync(file, 'utf8'))) {
        const [path = '', anchor] = target.split('#');
        const resolved = path ? join(dirname(file), decodeURIComponent(path)) : file;
        if (!existsSync(resolved)) broken.push(`${relative(ROOT, file)}: ${target} (no such file)`);
        else if (anchor !== undefined && !headingAnchors(readFileSync(resolved, 'utf8')).has(anchor))
          broken.push(`${relative(ROOT, file)}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('find a broken link or anchor (the check can fail)', () => {
    expect(relativeLinks('[a](b.md#c) [web](https://x.test/) `[code](no.md)`')).toEqual(['b.md#c']);
    expect([
      ...headingAnchors('# Many machines: `--shard k/n`\n## Recipes\n## Recipes\n```\n# not a heading\n```'),
    ]).toEqual(['many-machines---shard-kn', 'recipes', 'recipes-1']);
  });
});

/** Markdown with its code (fenced blocks, indented blocks, inline spans) taken out: links there are not links. */
function withoutCode(markdown: string): string {
  return markdown
    .replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '')
    .replace(/^ {4,}.*$/gm, '')
    .replace(/`[^`\n]*`/g, '');
}

/** The targets of a page's links that point inside the repository (not to a URL with a scheme). */
function relativeLinks(markdown: string): string[] {
  return [...withoutCode(markdown).matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const withoutFences = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
  for (const [, text] of withoutFences.matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const base = text!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-');
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}
