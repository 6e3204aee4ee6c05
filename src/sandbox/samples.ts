import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../core/shared/errors.js';

/** The sample files shipped in the package: ID scans, a selfie, a PDF, a video and a note, three with sidecars. */
export const SAMPLES_DIR = fileURLToPath(new URL('../../fixtures/', import.meta.url));

/**
 * Copies the samples into `folder`, created if need be. A file of a sample's name already
 * there must be that sample (so the same folder can be given again); nothing is written otherwise.
 */
export async function writeSamples(folder: string): Promise<void> {
  const names = await readdir(SAMPLES_DIR);
  try {
    await mkdir(folder, { recursive: true });
    const present = new Set(await readdir(folder));
    for (const name of names.filter((n) => present.has(n))) {
      const path = join(folder, name);
      if (!(await readFile(path)).equals(await readFile(join(SAMPLES_DIR, name)))) {
        throw new UsageError(
          `--samples: ${path} already exists and is not the sample of that name`,
          'give a new or empty folder',
        );
      }
    }
    for (const name of names.filter((n) => !present.has(n)))
      await copyFile(join(SAMPLES_DIR, name), join(folder, name), constants.COPYFILE_EXCL);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const { code, message } = error as NodeJS.ErrnoException;
    throw new UsageError(
      `--samples: cannot write the samples to ${folder} (${code ?? message})`,
      'give a folder you can write to',
    );
  }
}
