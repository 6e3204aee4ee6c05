// The backfill scale benchmark: trees of tiny files, 100 a folder, routed by folder, of each size
// in SCALE_SIZES (30,000 and 300,000 by default; `npm run bench:scale` adds 3,000,000). For each:
// a dry run and an upload checked first to a sink (its own process, --rate 0), with time to the
// first event, total time, files per second and the CLI's peak RSS; for 300,000 files also the
// upload with --skip-invalid, which streams at once.
import { beforeAfter, BUILDS, fmt, generateTree, runCli, startServer, table } from './lib.mjs';

const SIZES = (process.env.SCALE_SIZES ?? '30000,300000').split(',').map(Number);
const PER_FOLDER = 100;
const target = ['--org', 'bench', '--entity-from', 'dir', '--json'];
const rows = [['scenario', 'files', 'first event (s)', 'total (s)', 'files/s', 'peak RSS (MB)']];
const rates = {};
const peaks = {};

for (const size of SIZES) {
  // Distinct content of varied size, as real scans are.
  const { dir, total } = generateTree('scale', (n) => `jpeg ${n} ${'x'.repeat((n * 7919) % 1000)}`, {
    folders: Math.ceil(size / PER_FOLDER),
    perFolder: PER_FOLDER,
  });
  const add = (name, r) => {
    rates[name] = total / (r.wallMs / 1000);
    peaks[name] = r.peakRssMb;
    rows.push([
      name,
      r.summary?.planned ?? r.summary?.uploaded,
      fmt(r.firstMs / 1000, 2),
      fmt(r.wallMs / 1000),
      fmt(rates[name], 0),
      fmt(r.peakRssMb, 0),
    ]);
  };
  const label = total.toLocaleString('en-US');
  // Scenario by scenario, each build in turn, so that a machine that changes speed weighs on both alike.
  for (const [suffix, bin] of BUILDS)
    add(
      `${label}: dry run${suffix}`,
      await runCli(['upload', dir, ...target, '--base-url', 'http://127.0.0.1:9', '--dry-run'], {
        firstEvent: 'planned',
        bin,
      }),
    );
  const uploads = [
    ['upload, checked first', []],
    ...(total === 300_000 ? [['upload, --skip-invalid (streams at once)', ['--skip-invalid']]] : []),
  ];
  for (const [name, extra] of uploads) {
    for (const [suffix, bin] of BUILDS) {
      const sink = await startServer({ org: 'bench', sink: true });
      let run;
      let stats;
      try {
        run = await runCli(
          ['upload', dir, ...target, '--base-url', sink.url, '--rate', '0', '--concurrency', '32', ...extra],
          { env: { U21_API_KEY: 'sandbox-key' }, bin },
        );
      } finally {
        stats = await sink.stop();
      }
      if ((stats.statuses[200] ?? 0) < total) throw new Error(`${label}: only ${stats.statuses[200]} answers 200`);
      add(`${label}: ${name}${suffix}`, run);
    }
  }
}
console.log(
  `\nscale: ${SIZES.map((n) => n.toLocaleString('en-US')).join(', ')} files, ${PER_FOLDER} a folder, --entity-from dir (targets: 300,000-file dry run < 30 s and < 250 MB)`,
);
table(rows);
const smallest = SIZES[0].toLocaleString('en-US');
const largest = SIZES.at(-1).toLocaleString('en-US');
if (SIZES.length > 1)
  console.log(
    `peak RSS, upload checked first, ${largest} / ${smallest} files: ${fmt(peaks[`${largest}: upload, checked first`] / peaks[`${smallest}: upload, checked first`], 2)}×`,
  );
if (BUILDS.length > 1) console.log(`after/before (files/s): ${beforeAfter(rates)}`);
