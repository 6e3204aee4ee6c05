import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseCsv } from '../../src/core/shared/csv.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upload, type UploadEvent } from '../../src/index.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, runBin, runCli, tempDir, validContent } from '../helpers.js';
import { expectAccountedFor } from './attack-helpers.js';

async function sandbox(): Promise<Sandbox> {
  return closeAfter(await startSandbox());
}

async function send(server: Sandbox, paths: string[], extra: Record<string, unknown> = {}) {
  const events: UploadEvent[] = [];
  const summary = await upload({
    paths,
    entity: 'cust-1',
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { summary, events, all: [...events, summary] as unknown as Array<Record<string, unknown>> };
}

/** A tree with one real scan and links of every kind: out of it, inside it, broken, in a loop, and a sidecar from outside. */
async function linkedTree() {
  const root = await tempDir();
  const tree = join(root, 'tree');
  const outside = join(root, 'outside');
  await mkdir(join(tree, 'sub'), { recursive: true });
  await mkdir(outside);
  await copyFile(join(FIXTURES, 'selfie.jpg'), join(tree, 'selfie.jpg'));
  await copyFile(join(FIXTURES, 'passport_front.jpg'), join(outside, 'secret_passport.jpg'));
  await writeFile(join(outside, 'meta.json'), '{"media_type":"IMAGE_PASSPORT_FRONT","stolen":"from outside"}');
  await copyFile(join(FIXTURES, 'id_card_front.jpg'), join(tree, 'id_card_front.jpg'));
  await symlink('/etc/passwd', join(tree, 'secret.txt'));
  await symlink(join(outside, 'secret_passport.jpg'), join(tree, 'sub', 'passport.jpg'));
  await symlink('../selfie.jpg', join(tree, 'sub', 'inside_link.jpg'));
  await symlink('loop_b.jpg', join(tree, 'loop_a.jpg'));
  await symlink('loop_a.jpg', join(tree, 'loop_b.jpg'));
  await symlink(join(outside, 'meta.json'), join(tree, 'id_card_front.jpg.json'));
  return { root, tree, outside };
}

describe('a tree with links out of it', () => {
  it('walking a folder follows no link out of it, skips loops, and counts each as skipped', async () => {
    const { tree } = await linkedTree();
    const server = await sandbox();
    const { summary, events, all } = await send(server, [tree], { allowDuplicates: true });
    expect(server.stored.map((m) => m.name).sort()).toEqual(['inside_link.jpg', 'selfie.jpg']);
    const reasons = Object.fromEntries(
      events
        .filter((e) => e.event === 'skipped')
        .map((e) => [(e as { path: string }).path.slice(tree.length + 1), (e as { reason: string }).reason]),
    );
    expect(reasons).toEqual({
      'secret.txt': 'link_outside',
      'sub/passport.jpg': 'link_outside',
      'id_card_front.jpg': 'link_outside', // its sidecar comes from outside
      'loop_a.jpg': 'unsupported',
      'loop_b.jpg': 'unsupported',
    });
    expect(summary).toMatchObject({ uploaded: 2, skipped: 5, link_outside: 3 });
    expectAccountedFor(all, 7);
  });

  it('expanding a glob judges links against the pattern’s folder', async () => {
    const { root } = await linkedTree();
    const server = await sandbox();
    const { summary, all } = await send(server, ['tree/**/*.{jpg,txt}'], { cwd: root });
    // selfie.jpg, or inside_link.jpg with the same content, whichever the glob meets first; the other is a duplicate.
    expect(server.stored).toHaveLength(1);
    expect(server.stored[0]!.sha256).toBe(
      createHash('sha256')
        .update(await readFile(join(FIXTURES, 'selfie.jpg')))
        .digest('hex'),
    );
    expect(summary).toMatchObject({ uploaded: 1, link_outside: 3 });
    expectAccountedFor(all, 7);
  });

  it('follows them with --follow-links, and always follows a file named on the command line', async () => {
    const { tree } = await linkedTree();
    const server = await sandbox();
    // Both links in sub/ lead out of it: one to the tree above, one out of the tree altogether.
    const followed = await send(server, [join(tree, 'sub')], { followLinks: true, entity: 'followed' });
    expect(followed.summary).toMatchObject({ uploaded: 2, link_outside: 0 });
    const named = await send(server, [join(tree, 'sub', 'passport.jpg')], { entity: 'named' });
    expect(named.summary).toMatchObject({ uploaded: 1 });
    const stored = server.stored.filter((m) => m.objectId === 'named');
    expect(stored.map((m) => m.name)).toEqual(['passport.jpg']);
  });

  it('a file named on the command line or in a manifest takes its sidecar only from its own folder: a linked secret never lands in custom_data', async () => {
    const root = await tempDir();
    const home = join(root, 'home');
    await mkdir(join(root, 'kyc'), { recursive: true });
    await mkdir(home);
    await writeFile(join(home, 'config.json'), '{"auths":{"registry.example":{"auth":"c2VjcmV0LXRva2Vu"}}}');
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(root, 'kyc', 'selfie.jpg'));
    await symlink(join(home, 'config.json'), join(root, 'kyc', 'selfie.jpg.json'));
    await writeFile(join(root, 'manifest.csv'), 'path,entity_id\nkyc/selfie.jpg,cust-1\n');
    const server = await sandbox();
    for (const target of [
      ['kyc/selfie.jpg', '--entity', 'cust-1'],
      ['--manifest', 'manifest.csv'],
    ]) {
      const run = await runBin(
        [
          'upload',
          ...target,
          '--org',
          server.org,
          '--base-url',
          server.url,
          '--json',
          '--no-journal',
          '--report',
          'r.json',
        ],
        { cwd: root, env: { U21_API_KEY: server.apiKey } },
      );
      expect(run.code).toBe(1);
      expect(run.events.find((e) => e.event === 'skipped')).toMatchObject({
        reason: 'link_outside',
        message: `its sidecar selfie.jpg.json is a link to ${join(home, 'config.json')}, outside kyc; not followed (--follow-links follows it)`,
      });
      expect(await readFile(join(root, 'r.json'), 'utf8')).not.toContain('c2VjcmV0LXRva2Vu');
    }
    expect(server.requests).toHaveLength(0);
    const followed = await runBin(
      [
        'upload',
        'kyc/selfie.jpg',
        '--entity',
        'cust-1',
        '--follow-links',
        '--org',
        server.org,
        '--base-url',
        server.url,
        '--no-journal',
      ],
      { cwd: root, env: { U21_API_KEY: server.apiKey } },
    );
    expect(followed.code, followed.stderr).toBe(0);
    expect(server.stored[0]!.customData).toEqual({ auths: { 'registry.example': { auth: 'c2VjcmV0LXRva2Vu' } } });
  });

  it('the built binary exits 1 and says how to follow them, after uploading the rest', async () => {
    const { root } = await linkedTree();
    const server = await sandbox();
    const run = await runBin(['upload', 'tree', '--entity', 'c', '--org', server.org, '--base-url', server.url], {
      cwd: root,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /- skipped tree\/secret\.txt \(link_outside: a link to \/etc\/passwd, outside tree; not followed \(--follow-links follows it\)\)/,
    );
    expect(run.stderr).toMatch(/3 links out of the folder were not followed[\s\S]*hint: pass --follow-links/);
    expect(server.stored.map((m) => m.name)).toEqual(['selfie.jpg']); // inside_link.jpg, the same content, is a duplicate
  });
});

describe('odd names and shapes', () => {
  it('a file name that is not valid UTF-8 is an input error naming it, or skipped as invalid with --skip-invalid', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
    writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9]), Buffer.from('.jpg')]),
      validContent('.jpg', 'latin-1 name'),
    );
    const server = await sandbox();
    await expect(send(server, [dir])).rejects.toMatchObject({
      problems: [{ message: 'the file name is not valid UTF-8 (caf\\xe9.jpg); rename it' }],
    });
    expect(server.requests).toHaveLength(0);
    const skipping = await send(server, [dir], { skipInvalid: true });
    expect(skipping.summary).toMatchObject({ uploaded: 1, skipped: 1, invalid: 1 });
    expectAccountedFor(skipping.all, 2);
  });

  it('walks a tree 2,000 folders deep', async () => {
    const dir = await tempDir();
    const deep = join(dir, ...Array.from({ length: 2000 }, () => 'd'));
    await mkdir(deep, { recursive: true });
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(deep, 'selfie.jpg'));
    const server = await sandbox();
    const { summary } = await send(server, [dir]);
    expect(summary.uploaded).toBe(1);
    expect(server.stored.map((m) => m.name)).toEqual(['selfie.jpg']);
  });

  it('a sidecar over 64 KB is an input error naming it; nothing is sent', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
    await writeFile(
      join(dir, 'selfie.jpg.json'),
      JSON.stringify({ media_type: 'IMAGE_FACE_IMAGE', padding: 'x'.repeat(200 * 1024) }),
    );
    const server = await sandbox();
    await expect(send(server, [dir])).rejects.toMatchObject({
      problems: [
        {
          path: join(dir, 'selfie.jpg'),
          message: expect.stringMatching(/^selfie\.jpg\.json: the sidecar is over 64 KB/),
        },
      ],
    });
    expect(server.requests).toHaveLength(0);
  });

  it.each(['csv', 'jsonl'] as const)(
    'a %s manifest record over 1 MB is an input error naming its line; the other rows are still checked',
    async (format) => {
      const dir = await tempDir();
      await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
      const huge = 'x'.repeat(2 * 1024 * 1024);
      const text =
        format === 'csv'
          ? `path,entity_id,custom_data\nselfie.jpg,c1,\nselfie.jpg,"${huge}",\nmissing.jpg,c1,\n`
          : `{"path":"selfie.jpg","entity_id":"c1"}\n{"path":"selfie.jpg","entity_id":"${huge}"}\n{"path":"missing.jpg","entity_id":"c1"}\n`;
      const manifest = join(dir, `m.${format}`);
      await writeFile(manifest, text);
      const server = await sandbox();
      const lines = format === 'csv' ? [3, 4] : [2, 3];
      await expect(send(server, [], { manifest, entity: undefined })).rejects.toMatchObject({
        problems: [
          { path: `${manifest}:${lines[0]}`, message: expect.stringMatching(/^the record is over 1 MB/) },
          { path: `${manifest}:${lines[1]}`, message: expect.stringMatching(/no such file|cannot read/) },
        ],
      });
      expect(server.requests).toHaveLength(0);
    },
  );
});

describe('a manifest with formula cells', () => {
  const FORMULAS = ['=HYPERLINK("http://evil.example","x")', "=cmd|' /C calc'!A0", '+1+1', '-2+3', '@SUM(A1)', '\tTAB'];

  it('lands in a CSV report with each formula cell quoted off, in the JSON report exactly, and on the server as given', async () => {
    const dir = await tempDir();
    const rows = ['path,entity_id,media_type'];
    for (const [i, id] of FORMULAS.entries()) {
      await writeFile(join(dir, `scan_${i}.pdf`), `%PDF-1.4 ${i}\n%%EOF\n`);
      rows.push(`scan_${i}.pdf,"${id.replace(/"/g, '""')}",=1+2`);
    }
    await writeFile(join(dir, 'manifest.csv'), `${rows.join('\n')}\n`);
    const server = await sandbox();
    for (const format of ['csv', 'json']) {
      const run = await runCli(
        [
          'upload',
          '--manifest',
          'manifest.csv',
          '--org',
          server.org,
          '--base-url',
          server.url,
          '--report',
          `report.${format}`,
          '--quiet',
        ],
        { cwd: dir, env: { U21_API_KEY: server.apiKey } },
      );
      expect(run.code, run.stderr).toBe(0);
    }
    expect(server.stored.map((m) => m.objectId).sort()).toEqual([...FORMULAS, ...FORMULAS].sort());
    const csv = await readFile(join(dir, 'report.csv'), 'utf8');
    const records = [];
    for await (const record of parseCsv([csv])) records.push(record.fields);
    expect(records).toHaveLength(1 + FORMULAS.length);
    // No cell starts a formula: each dangerous start has a ' before it.
    for (const cell of records.flat()) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    expect(csv).toContain(`'=cmd|' /C calc'!A0`);
    const json = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as Array<Record<string, unknown>>;
    expect(json.at(-1)).toHaveProperty('run_end');
    expect(
      json
        .slice(1, -1)
        .map((r) => r.entity_id)
        .sort(),
    ).toEqual([...FORMULAS].sort());
    expect(json.slice(1, -1).every((r) => r.media_type === '=1+2')).toBe(true);

    // Merged back, the CSV report gives the exact values again.
    const merged = await runCli(['report', 'merge', 'report.csv'], { cwd: dir });
    const back = JSON.parse(merged.stdout) as Array<Record<string, unknown>>;
    expect(back.map((r) => r.entity_id).sort()).toEqual([...FORMULAS].sort());
  });
});

describe('files the run writes', () => {
  it.each([
    ['--report', 'manifest.csv', ['--manifest', 'manifest.csv']],
    ['--report', 'journal.jsonl', ['--entity', 'c1', '--journal', 'journal.jsonl', 'selfie.jpg']],
    ['--journal', 'manifest.csv', ['--manifest', 'manifest.csv']],
  ])('%s given the path of an input it reads is refused, and the input is left as it was', async (flag, path, rest) => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
    const manifest = 'path,entity_id\nselfie.jpg,c1\n';
    await writeFile(join(dir, 'manifest.csv'), manifest);
    await writeFile(join(dir, 'journal.jsonl'), '');
    const server = await sandbox();
    const run = await runCli(['upload', ...rest, '--org', server.org, '--base-url', server.url, flag, path], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(
        `u21-media: error: ${flag}: \\S*${path.replace('.', '\\.')} is also the --\\w+ file; it would be written over`,
      ),
    );
    expect(await readFile(join(dir, 'manifest.csv'), 'utf8')).toBe(manifest);
    expect(await readFile(join(dir, 'journal.jsonl'), 'utf8')).toBe('');
    expect(server.requests).toHaveLength(0);
  });

  it('a journal line that is JSON but no record is skipped with a warning naming it; the rest still counts', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
    await copyFile(join(FIXTURES, 'id_card_front.jpg'), join(dir, 'id_card_front.jpg'));
    const server = await sandbox();
    const journal = join(await tempDir(), 'j.jsonl');
    await send(server, [join(dir, 'selfie.jpg')], { journal });
    await writeFile(journal, `null\n${await readFile(journal, 'utf8')}[1,2]\n"text"\n`);
    const again = await send(server, [dir], { journal });
    expect(again.events.filter((e) => e.event === 'warning').map((e) => (e as { message: string }).message)).toEqual([
      `${journal}: 3 lines are not a journal record (lines 1, 4, 5), skipped; a line cut short by a crash looks like this`,
    ]);
    expect(again.summary).toMatchObject({ uploaded: 1, skipped: 1 });
    expect(server.stored.map((m) => m.name).sort()).toEqual(['id_card_front.jpg', 'selfie.jpg']);
  });
});

describe('a config file found by searching', () => {
  async function withConfig(name: string, text: string) {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
    await writeFile(join(dir, name), text);
    return dir;
  }

  it('may not send uploads to a host that is not Unit21’s', async () => {
    const dir = await withConfig('.u21mediarc', '{"org":"acme","baseUrl":"https://collector.evil.example"}');
    const run = await runCli(['upload', 'selfie.jpg', '--entity', 'c1'], { cwd: dir, env: { U21_API_KEY: 'k' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/\.u21mediarc: "baseUrl" sends uploads to collector\.evil\.example, not a Unit21 host/);
  });

  it('may not name a key file', async () => {
    const dir = await withConfig('.u21mediarc.json', '{"org":"acme","env":"prod1","apiKeyFile":"/etc/hostname"}');
    const run = await runCli(['upload', 'selfie.jpg', '--entity', 'c1', '--dry-run'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /\.u21mediarc\.json: "apiKeyFile" decides which key is sent, so only a config file named with --config may set it; this one was found by searching/,
    );
  });

  it('is never run when it is JavaScript, not even for a dry run; named with --config it is', async () => {
    const dir = await withConfig(
      'u21media.config.mjs',
      `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify('ran')}, 'yes'); export default { org: 'acme', env: 'prod1' };`,
    );
    const searched = await runBin(['upload', 'selfie.jpg', '--entity', 'c1', '--dry-run'], { cwd: dir });
    expect(searched.code).toBe(2);
    expect(searched.stderr).toMatch(
      /u21media\.config\.mjs: a JavaScript config file runs code, so it is loaded only when named with --config/,
    );
    await expect(readFile(join(dir, 'ran'), 'utf8')).rejects.toThrow();
    const named = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'c1', '--dry-run', '--config', 'u21media.config.mjs'],
      { cwd: dir },
    );
    expect(named.code, named.stderr).toBe(0);
    expect(await readFile(join(dir, 'ran'), 'utf8')).toBe('yes');
    expect(named.stderr).toMatch(
      /^u21-media: dry run for https:\/\/api\.unit21\.com\/v1 · org acme · config .*u21media\.config\.mjs$/m,
    );
  });

  it('is named, with the host and org, on stderr, in the --json summary and in the report', async () => {
    const server = await sandbox();
    const dir = await withConfig('.u21mediarc.json', JSON.stringify({ org: server.org, baseUrl: server.url }));
    const run = await runCli(['upload', 'selfie.jpg', '--entity', 'c1', '--json', '--report', 'r.json'], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code, run.stderr).toBe(0);
    const config = join(dir, '.u21mediarc.json');
    expect(run.stderr).toContain(
      `u21-media: sending to ${server.url}/v1 · org sandbox · config ${config} (found by searching; it sets org="sandbox", baseUrl="${server.url}")`,
    );
    expect(run.events.at(-1)).toMatchObject({ host: `${server.url}/v1`, org: 'sandbox', config });
    const [header] = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8')) as Array<Record<string, unknown>>;
    expect(header).toMatchObject({ run: { host: `${server.url}/v1`, org: 'sandbox', config } });
  });
});
