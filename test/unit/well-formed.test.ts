import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkedOrg } from '../../src/core/connection/hosts.js';
import { compileRules } from '../../src/core/inputs/media-type.js';
import { metadataFrom } from '../../src/core/files/sidecar.js';
import { jsonValueProblem, MAX_CUSTOM_DATA_DEPTH, textProblem } from '../../src/core/shared/well-formed.js';
import { plan } from '../../src/index.js';
import { planned, tempDir } from '../helpers.js';

const LONE = '\ud800';
/** A value `depth` levels deep, the outermost included: `[[…["leaf"]…]]`. */
const nested = (depth: number): unknown =>
  Array.from({ length: depth - 1 }).reduce<unknown>((inner) => [inner], ['leaf']);
const PDF = '%PDF-1.4 document\n%%EOF\n';

describe('text checks', () => {
  it('take well-formed text, also beyond the Basic Multilingual Plane', () => {
    for (const text of ['cust-1', 'Zoë 🇩🇪', '\ud83d\ude00', '']) expect(textProblem(text, 'entity id')).toBeUndefined();
  });

  it.each([
    ['a high surrogate alone', `cust-${LONE}`, '\\ud800', 6],
    ['a low surrogate alone', '\udc00x', '\\udc00', 1],
    ['a pair the wrong way round', 'ab\udc00\ud800', '\\udc00', 3],
  ])('name %s, where it is, in an ASCII-only message', (_, text, unit, at) => {
    const problem = textProblem(text, 'entity id')!;
    expect(problem).toContain(`is not well-formed text: a lone UTF-16 surrogate (${unit}) at character ${at}`);
    expect(problem).toMatch(/^entity id "/);
    expect(problem.isWellFormed()).toBe(true);
  });

  it(`take custom_data ${MAX_CUSTOM_DATA_DEPTH} levels deep and refuse it one level deeper`, () => {
    expect(jsonValueProblem(nested(MAX_CUSTOM_DATA_DEPTH), 'sidecar custom_data')).toBeUndefined();
    expect(jsonValueProblem({ a: { b: nested(MAX_CUSTOM_DATA_DEPTH - 2) } }, 'sidecar custom_data')).toBeUndefined();
    expect(jsonValueProblem(nested(MAX_CUSTOM_DATA_DEPTH + 1), 'sidecar custom_data')).toBe(
      `sidecar custom_data is nested more than ${MAX_CUSTOM_DATA_DEPTH} levels deep; custom_data holds a record's fields, not a tree that deep`,
    );
  });

  it('refuse custom_data 10,000 levels deep without running out of stack', () => {
    const deep = JSON.parse(`{"history":${'['.repeat(10_000)}${']'.repeat(10_000)}}`) as unknown;
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(jsonValueProblem(deep, 'row custom_data')).toMatch(/^row custom_data is nested more than 32 levels deep/);
  });

  it('find a lone surrogate in a key or a value at any depth, and name where', () => {
    expect(jsonValueProblem({ ok: 1, [`k${LONE}`]: 2 }, 'custom_data')).toMatch(
      /^custom_data key "k\\ud800" is not well-formed/,
    );
    expect(jsonValueProblem({ a: [1, { b: `v${LONE}` }] }, 'custom_data')).toMatch(
      /^custom_data\["a"\]\[1\]\["b"\] "v\\ud800" is not well-formed/,
    );
    expect(jsonValueProblem({ a: { [`\udc00`]: null } }, 'custom_data')).toMatch(
      /^custom_data\["a"\] key "\\udc00" is not well-formed/,
    );
    expect(jsonValueProblem({ a: [true, null, 1.5, 'fine', { b: 'Zoë' }] }, 'custom_data')).toBeUndefined();
  });

  it('are made by metadataFrom for media_type and custom_data, for sidecars and manifest rows alike', () => {
    expect(() => metadataFrom({ media_type: `IMAGE${LONE}` }, 'sidecar')).toThrow(
      /^sidecar "media_type" "IMAGE\\ud800" is not well-formed text/,
    );
    expect(() => metadataFrom({ note: LONE }, 'sidecar')).toThrow(
      /^sidecar custom_data\["note"\] "\\ud800" is not well-formed text/,
    );
    expect(() => metadataFrom({ custom_data: { deep: nested(40) } }, 'row')).toThrow(
      /^row custom_data is nested more than 32 levels deep/,
    );
  });

  it('refuse the org and a config rule’s media_type', async () => {
    expect(() => checkedOrg(`acme${LONE}`)).toThrow(/^--org "acme\\ud800" is not well-formed text/);
    await expect(compileRules([{ glob: '*.pdf', media_type: LONE }])).rejects.toThrow(
      /^conventions\[0\] "media_type" "\\ud800" is not well-formed text/,
    );
  });
});

describe('every source of an id, a name, a media_type or custom_data refuses what is not text', () => {
  it.each([['entity'], ['event'], ['alert'], ['case']] as const)('--%s', async (kind) => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.pdf'), PDF);
    await expect(plan({ paths: ['a.pdf'], cwd: dir, [kind]: `id-${LONE}` })).rejects.toThrow(
      `--${kind}: ${kind} id "id-\\ud800" is not well-formed text`,
    );
  });

  it('--media-type', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.pdf'), PDF);
    await expect(plan({ paths: ['a.pdf'], cwd: dir, entity: 'c', mediaType: `X${LONE}` })).rejects.toThrow(
      /^--media-type "X\\ud800" is not well-formed text/,
    );
  });

  it('a CSV manifest: custom_data values and keys, naming the line', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.pdf'), PDF);
    await writeFile(join(dir, 'b.pdf'), PDF);
    await writeFile(
      join(dir, 'm.csv'),
      'path,entity_id,custom_data\na.pdf,c1,"{""note"":""\\ud800""}"\nb.pdf,c1,"{""\\udc00"":1}"\n',
    );
    const { invalid, files } = await planned({ manifest: 'm.csv', cwd: dir });
    expect(files).toHaveLength(0);
    expect(invalid).toEqual([
      {
        path: 'm.csv:2',
        message: expect.stringMatching(/^row custom_data\["note"\] "\\ud800" is not well-formed text/),
      },
      { path: 'm.csv:3', message: expect.stringMatching(/^row custom_data key "\\udc00" is not well-formed text/) },
    ]);
  });

  it('a JSONL manifest: entity_id, alert_id, path, media_type and custom_data nested too deep, each naming its line', async () => {
    const dir = await tempDir();
    for (const name of ['a.pdf', 'b.pdf', 'd.pdf', 'e.pdf', 'ok.pdf']) await writeFile(join(dir, name), PDF);
    const rows = [
      { path: 'a.pdf', entity_id: `c-${LONE}` },
      { path: 'b.pdf', alert_id: `9${LONE}` },
      { path: `c${LONE}.pdf`, entity_id: 'c1' },
      { path: 'd.pdf', entity_id: 'c1', media_type: `T${LONE}` },
      { path: 'e.pdf', entity_id: 'c1', custom_data: { h: nested(33) } },
      { path: 'ok.pdf', entity_id: 'c1', custom_data: { h: nested(31) } },
    ];
    await writeFile(join(dir, 'm.jsonl'), `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`);
    const { invalid, files } = await planned({ manifest: 'm.jsonl', cwd: dir });
    expect(files.map((f) => f.path)).toEqual(['ok.pdf']);
    expect(invalid).toEqual([
      { path: 'm.jsonl:1', message: expect.stringMatching(/^a\.pdf: entity id "c-\\ud800" is not well-formed text/) },
      { path: 'm.jsonl:2', message: expect.stringMatching(/^b\.pdf: alert id "9\\ud800" is not well-formed text/) },
      { path: 'm.jsonl:3', message: expect.stringMatching(/^"path" "c\\ud800\.pdf" is not well-formed text/) },
      { path: 'm.jsonl:4', message: expect.stringMatching(/^row "media_type" "T\\ud800" is not well-formed text/) },
      { path: 'm.jsonl:5', message: expect.stringMatching(/^row custom_data is nested more than 32 levels deep/) },
    ]);
  });

  it('a report given back (--retry-failed): its entity_id and custom_data', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.pdf'), PDF);
    await writeFile(join(dir, 'b.pdf'), PDF);
    const rows = [
      { run: { tool: 'u21-media' } },
      { path: 'a.pdf', entity_id: `c${LONE}`, outcome: 'failed' },
      { path: 'b.pdf', entity_id: 'c1', outcome: 'failed', custom_data: { [LONE]: 1 } },
    ];
    await writeFile(join(dir, 'report.json'), `[\n${rows.map((row) => JSON.stringify(row)).join(',\n')}\n]\n`);
    const { invalid } = await planned({ retryFailed: 'report.json', cwd: dir });
    expect(invalid).toEqual([
      {
        path: 'report.json:3',
        message: expect.stringMatching(/^a\.pdf: entity id "c\\ud800" is not well-formed text/),
      },
      {
        path: 'report.json:4',
        message: expect.stringMatching(/^row custom_data key "\\ud800" is not well-formed text/),
      },
    ]);
  });

  it('--entity-from dir and prefix, and the name sent, from paths a caller made up', async () => {
    const dir = await tempDir();
    // On disk the lone surrogate becomes U+FFFD; the caller's string keeps it.
    await mkdir(join(dir, `cust${LONE}`));
    await writeFile(join(dir, `cust${LONE}`, 'a.pdf'), PDF);
    await writeFile(join(dir, `p${LONE}__b.pdf`), PDF);
    await writeFile(join(dir, `n${LONE}.pdf`), PDF);
    const byDir = await planned({ paths: [join(dir, `cust${LONE}`, 'a.pdf')], cwd: dir, entityFrom: 'dir' });
    expect(byDir.invalid).toEqual([
      { path: expect.any(String), message: expect.stringMatching(/^entity id "cust\\ud800" is not well-formed text/) },
    ]);
    const byPrefix = await planned({ paths: [`p${LONE}__b.pdf`], cwd: dir, entityFrom: 'prefix' });
    expect(byPrefix.invalid).toEqual([
      { path: expect.any(String), message: expect.stringMatching(/^entity id "p\\ud800" is not well-formed text/) },
    ]);
    const byName = await planned({ paths: [`n${LONE}.pdf`], cwd: dir, entity: 'c1' });
    expect(byName.invalid).toEqual([
      { path: expect.any(String), message: expect.stringMatching(/^its name "n\\ud800\.pdf" is not well-formed text/) },
    ]);
  });

  it('a sidecar: custom_data at any depth, and nested 10,000 deep', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.pdf'), PDF);
    await writeFile(join(dir, 'a.pdf.json'), `{"custom_data":{"h":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`);
    await writeFile(join(dir, 'b.pdf'), PDF);
    await writeFile(join(dir, 'b.pdf.json'), '{"source":{"app":["x","\\udfff"]}}');
    const { invalid } = await planned({ paths: [dir], cwd: dir, entity: 'c1' });
    expect(invalid.map((p) => p.message)).toEqual([
      expect.stringMatching(/^a\.pdf\.json: sidecar custom_data is nested more than 32 levels deep/),
      expect.stringMatching(
        /^b\.pdf\.json: sidecar custom_data\["source"\]\["app"\]\[1\] "\\udfff" is not well-formed text/,
      ),
    ]);
  });
});
