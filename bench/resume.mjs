// Resume from a large journal: a journal of JOURNAL_FILES earlier uploads (300,000 by default;
// `npm run bench:scale` adds 3,000,000), then an upload of 1,000 new files to a sink with it,
// streamed (--skip-invalid) so that the journal is what stands before the first request. Run
// twice: first with no index beside the journal (it is built from every line), then with the
// index the first run left. Prints the time to the first request's answer and peak RSS.
import { createWriteStream, existsSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fmt, randomFiles, ROOT, runCli, startServer, table } from './lib.mjs';

const SIZES = (process.env.JOURNAL_FILES ?? '300000').split(',').map(Number);
const { dir } = randomFiles(join(ROOT, '.bench', 'resume-new-1000'), 1000, 2048);
const rows = [['journal of', 'journal size (MB)', 'index', 'first answer (s)', 'total (s)', 'peak RSS (MB)']];

for (const size of SIZES) {
  const journal = join(ROOT, '.bench', `journal-${size}.jsonl`);
  if (!existsSync(journal)) await writeJournal(journal, size);
  const index = join(dirname(journal), `.${basename(journal)}.index`);
  rmSync(index, { recursive: true, force: true });
  for (const [n, state] of ['built from the journal', 'kept from the run before'].entries()) {
    // Another entity each time, so the files are new to the journal.
    const sink = await startServer({ org: 'bench', sink: true });
    let run;
    try {
      run = await runCli(
        [
          'upload',
          dir,
          '--org',
          'bench',
          '--entity',
          `new-${n}`,
          '--base-url',
          sink.url,
          '--json',
          '--rate',
          '0',
          '--skip-invalid',
          '--journal',
          journal,
        ],
        { env: { U21_API_KEY: 'sandbox-key' } },
      );
    } finally {
      await sink.stop();
    }
    rows.push([
      size.toLocaleString('en-US'),
      fmt(statSync(journal).size / 1e6, 0),
      state,
      fmt(run.firstMs / 1000, 2),
      fmt(run.wallMs / 1000),
      fmt(run.peakRssMb, 0),
    ]);
  }
  rmSync(journal, { force: true });
  rmSync(index, { recursive: true, force: true });
}
console.log(
  '\nresume: an upload of 1,000 new files with a journal of earlier uploads (target: first request within 10 s of a 3,000,000-file journal)',
);
table(rows);

/** `size` uploads, each a `sending` line and an `uploaded` line, to entities of 100 files, all to one API host (not the sink's: the files sent are new anyway). */
async function writeJournal(path, size) {
  console.log(`writing a journal of ${size} uploads to ${path} …`);
  const out = createWriteStream(path);
  for (let i = 0; i < size; i++) {
    const base = {
      time: '2026-12-01T00:00:00.000Z',
      run: '20261201T000000Z-abcdef',
      host: 'http://127.0.0.1:9/v1',
      org: 'bench',
      entity_id: `cust-${Math.floor(i / 100)}`,
      path: `cust-${Math.floor(i / 100)}/scan_${i}.jpg`,
      name: `scan_${i}.jpg`,
      media_type: null,
      sha256: null,
      bytes: 100 + (i % 1000),
    };
    const lines = `${JSON.stringify({ ...base, outcome: 'sending' })}\n${JSON.stringify({ ...base, outcome: 'uploaded', sha256: i.toString(16).padStart(64, '0'), status: 200, attempts: 1 })}\n`;
    if (!out.write(lines)) await new Promise((resolve) => out.once('drain', resolve));
  }
  await new Promise((resolve) => out.end(resolve));
}
