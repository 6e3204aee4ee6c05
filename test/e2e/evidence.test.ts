import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, ROOT, runBin, tempDir } from '../helpers.js';

const KEY = 'evidence-secret-key-42';
const EVIDENCE = join(ROOT, 'test', 'fixtures', 'evidence');

async function sandbox(dir?: string): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey: KEY, org: 'acme', ...(dir && { dir }) }));
}

const upload = (server: Sandbox, ...args: string[]) => ['upload', ...args, '--org', 'acme', '--base-url', server.url, '--entity', 'cust-7', '--no-journal'];

/** A folder holding the fixtures and, beside them, the named evidence files under the names given. */
async function folderWith(files: Record<string, string>): Promise<string> {
  const dir = join(await tempDir(), 'kyc');
  await mkdir(dir);
  for (const name of ['selfie.jpg', 'proof_of_address.pdf', 'profile_picture.png']) await copyFile(join(FIXTURES, name), join(dir, name));
  for (const [name, from] of Object.entries(files)) await copyFile(join(EVIDENCE, from), join(dir, name));
  return dir;
}

describe('content checks before sending (built binary)', () => {
  it.each([
    ['a PNG named .jpg', 'drivers_license_front.jpg', 'drivers_license_front.jpg', /drivers_license_front\.jpg: holds a PNG image, not a JPEG; rename it to \.png/],
    ['an HTML page named .pdf', 'statement.pdf', 'proof_of_address.pdf', /statement\.pdf: holds an HTML page .*not a PDF/],
    ['an iPhone HEIC renamed .jpg', 'passport_front.jpg', 'passport_front.heic', /passport_front\.jpg: holds a HEIC\/HEIF image .*pass --convert/],
    ['a WebP named .jpg', 'id_card_front.jpg', 'id_card_front.webp', /id_card_front\.jpg: holds a WebP image, not a JPEG/],
    ['a JPEG cut off halfway', 'selfie_2.jpg', 'selfie_cut_off.jpg', /selfie_2\.jpg: looks truncated: a JPEG without its end marker/],
  ])('refuses %s with exit 2, naming it, and sends nothing', async (_, name, from, message) => {
    const server = await sandbox();
    const dir = await folderWith({ [name]: from });
    const result = await runBin([...upload(server, dir), '--json'], { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    const error = result.events.find((e) => e.event === 'error') as { problems: Array<{ path: string; message: string }> };
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]!.path).toBe(join(dir, name));
    expect(server.requests).toHaveLength(0);
    expect(server.stored).toHaveLength(0);
  });

  it('shows in the dry run what each file was detected as, and --no-sniff sends a mislabelled file as it is', async () => {
    const server = await sandbox();
    const dir = await folderWith({ 'drivers_license_front.jpg': 'drivers_license_front.jpg' });
    const dry = await runBin([...upload(server, dir), '--json', '--dry-run', '--skip-invalid'], { cwd: dir });
    const detected = Object.fromEntries(dry.events.filter((e) => e.event === 'planned').map((e) => [String(e.path).split('/').pop(), e.detected]));
    expect(detected).toEqual({ 'selfie.jpg': 'jpeg', 'proof_of_address.pdf': 'pdf', 'profile_picture.png': 'png' });
    expect(dry.events).toContainEqual(expect.objectContaining({ event: 'skipped', reason: 'invalid', path: join(dir, 'drivers_license_front.jpg') }));

    const sent = await runBin([...upload(server, dir), '--json', '--no-sniff'], { cwd: dir, env: { U21_API_KEY: KEY } });
    expect(sent.code).toBe(0);
    expect(server.stored.map((m) => m.name).sort()).toEqual(['drivers_license_front.jpg', 'profile_picture.png', 'proof_of_address.pdf', 'selfie.jpg']);
    const planned = await runBin([...upload(server, dir), '--json', '--dry-run', '--no-sniff'], { cwd: dir });
    expect(planned.events.filter((e) => e.event === 'planned').every((e) => e.detected === null)).toBe(true);
  });

  it('passes every fixture the demo uploads', async () => {
    const server = await sandbox();
    const result = await runBin([...upload(server, FIXTURES), '--json', '--dry-run'], { cwd: FIXTURES });
    expect(result.code).toBe(0);
    expect(result.events.at(-1)).toMatchObject({ event: 'summary', planned: 10, invalid: 0 });
    expect(await readFile(join(FIXTURES, 'proof_of_address.pdf'), 'latin1')).toMatch(/%%EOF\s*$/);
  });
});
