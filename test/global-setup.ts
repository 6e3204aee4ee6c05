import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The suite runs in a space of its own: HOME, TMPDIR and XDG_STATE_HOME point into one folder,
 * removed when the suite ends, for the test processes and every process they start. The suite
 * fails if it left anything of this tool's in the system's temporary folder or in the user's
 * state folder all the same, or a file in the project's own folder (a relative path resolved
 * against the process's folder rather than the run's).
 */
const SUITE_PREFIX = 'u21-media-suite-';
const PROJECT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Files in the project that git neither tracks nor ignores (none known outside a git checkout). */
function untracked(): string[] {
  try {
    return execFileSync('git', ['ls-files', '--others', '--exclude-standard', '--directory'], {
      cwd: PROJECT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split('\n')
      .filter((line) => line !== '');
  } catch {
    return [];
  }
}

export default function setup(): () => void {
  const realTmp = tmpdir();
  const realState = join(homedir(), '.local', 'state', 'u21-media');
  // Another suite running at the same time has a space of its own there too: not this suite's leftover.
  const ofOurs = () => readdirSync(realTmp).filter((name) => name.startsWith('u21-') && !name.startsWith(SUITE_PREFIX));
  const stateOf = () => (existsSync(realState) ? readdirSync(realState) : []);
  const [tmpBefore, stateBefore, projectBefore] = [new Set(ofOurs()), new Set(stateOf()), new Set(untracked())];
  const root = mkdtempSync(join(realTmp, SUITE_PREFIX));
  const space = { HOME: join(root, 'home'), TMPDIR: join(root, 'tmp'), XDG_STATE_HOME: join(root, 'state') };
  for (const folder of Object.values(space)) mkdirSync(folder);
  Object.assign(process.env, space);
  return () => {
    rmSync(root, { recursive: true, force: true });
    const left = [
      ...ofOurs()
        .filter((name) => !tmpBefore.has(name))
        .map((name) => join(realTmp, name)),
      ...stateOf()
        .filter((name) => !stateBefore.has(name))
        .map((name) => join(realState, name)),
      ...untracked()
        .filter((name) => !projectBefore.has(name))
        .map((name) => join(PROJECT, name)),
    ];
    if (left.length > 0) throw new Error(`the suite wrote outside its own folder: ${left.join(', ')}`);
  };
}
