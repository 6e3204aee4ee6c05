// The content check's cost: a 300,000-file dry run (3,000 folders of JPEG-shaped files, a
// quarter of them larger than the 4 KB head, so their end is a second read) with the check
// on, beside the same dry run with --no-sniff. Target: under 30 s with the check on.
import { fmt, generateTree, runCli, table } from './lib.mjs';

const {
  dir: DATA,
  folders: FOLDERS,
  total: TOTAL,
} = generateTree('sniff', (n, i) =>
  Buffer.alloc(i % 4 === 0 ? 5000 + ((n * 7919) % 3000) : 200 + ((n * 7919) % 1000), n & 0x7f),
);
const args = [
  'upload',
  DATA,
  '--org',
  'bench',
  '--entity-from',
  'dir',
  '--json',
  '--base-url',
  'http://127.0.0.1:9',
  '--dry-run',
];
const rows = [['scenario', 'files', 'first event (s)', 'total (s)', 'files/s', 'peak RSS (MB)']];
for (const [name, extra] of [
  ['dry run, content checked', []],
  ['dry run, --no-sniff', ['--no-sniff']],
]) {
  const r = await runCli([...args, ...extra], { firstEvent: 'planned' });
  rows.push([
    name,
    r.summary?.planned,
    fmt(r.firstMs / 1000, 2),
    fmt(r.wallMs / 1000),
    fmt(TOTAL / (r.wallMs / 1000), 0),
    fmt(r.peakRssMb, 0),
  ]);
}
console.log(`\nsniff: ${TOTAL} files in ${FOLDERS} folders (target: content checked < 30 s)`);
table(rows);
