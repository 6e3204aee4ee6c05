// The API's own limit held over a long run: 50,000 files of 10 KB (API_FILES) to the sink with
// 100 ms latency and a real limit of 200 requests/s (429s beyond it), at --rate 200, batch 1 and
// --batch 10. Files/s counts from the sink's first request to its last answer, and over the
// whole run; the 429 share is of all requests. Targets: batch 1 ≥ 195 files/s, --batch 10 ≥
// 1,900, under 1% 429s, nothing lost.
import { join } from 'node:path';
import { fmt, randomFiles, ROOT, runCli, startServer, table } from './lib.mjs';

const FILES = Number(process.env.API_FILES ?? 50_000);
const { dir } = randomFiles(join(ROOT, '.bench', `api-${FILES}`), FILES, 10_000);
const rows = [
  ['run', 'files stored', 'first request → last answer (files/s)', 'whole run (files/s)', '429s', 'peak RSS (MB)'],
];
for (const [name, extra, perRequest] of [
  ['--rate 200 --concurrency 32', [], 1],
  ['--rate 200 --concurrency 32 --batch 10', ['--batch', '10'], 10],
]) {
  const sink = await startServer({ sink: true, faults: { latencyMs: 100, rateLimit: 200 } });
  let run;
  let stats;
  try {
    // As users run it, the content check on: the files are random bytes between a JPEG's start and end.
    run = await runCli(
      [
        'upload',
        dir,
        '--entity',
        'bench',
        '--org',
        'sandbox',
        '--base-url',
        sink.url,
        '--rate',
        '200',
        '--concurrency',
        '32',
        ...extra,
      ],
      { env: { U21_API_KEY: 'sandbox-key' } },
    );
  } finally {
    stats = await sink.stop();
  }
  const stored = (stats.statuses[200] ?? 0) * perRequest;
  const throttled = stats.statuses[429] ?? 0;
  rows.push([
    name,
    stored,
    fmt(stored / (stats.spanMs / 1000), 0),
    fmt(stored / (run.wallMs / 1000), 0),
    `${throttled} (${fmt((throttled / stats.requests) * 100, 2)}%)`,
    fmt(run.peakRssMb, 0),
  ]);
}
console.log(`\nthe API's limit held: ${FILES} files × 10 KB, 100 ms latency, 200 requests/s with real 429s`);
table(rows);
