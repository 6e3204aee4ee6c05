// The backfill scale benchmark: 300,000 tiny files in 3,000 folders, routed by folder.
// Prints, for a dry run and a real upload to the local sandbox (its own process): time to the
// first event, total time, files per second and the CLI's peak RSS.
import { beforeAfter, BUILDS, fmt, generateTree, runCli, startServer, table } from './lib.mjs';

// Distinct content of varied size, as real scans are.
const { dir: DATA, folders: FOLDERS, total: TOTAL } = generateTree('scale', (n) => `jpeg ${n} ${'x'.repeat((n * 7919) % 1000)}`);
const target = ['--org', 'bench', '--entity-from', 'dir', '--json'];
const rows = [['scenario', 'files', 'first event (s)', 'total (s)', 'files/s', 'peak RSS (MB)']];
const rates = {};
const add = (name, r) => {
  rates[name] = TOTAL / (r.wallMs / 1000);
  rows.push([name, r.summary?.planned ?? r.summary?.uploaded, fmt(r.firstMs / 1000, 2), fmt(r.wallMs / 1000), fmt(rates[name], 0), fmt(r.peakRssMb, 0)]);
};

// Scenario by scenario, each build in turn, so that a machine that changes speed weighs on both alike.
for (const [suffix, bin] of BUILDS) add(`dry run${suffix}`, await runCli(['upload', DATA, ...target, '--base-url', 'http://127.0.0.1:9', '--dry-run'], { firstEvent: 'planned', bin }));
for (const [name, extra] of [
  ['upload, checked first', []],
  ['upload, --skip-invalid (streams at once)', ['--skip-invalid']],
]) {
  for (const [suffix, bin] of BUILDS) {
    const sandbox = await startServer({ org: 'bench' });
    try {
      add(`${name}${suffix}`, await runCli(['upload', DATA, ...target, '--base-url', sandbox.url, '--rate', '0', '--concurrency', '32', '--no-journal', ...extra], { env: { U21_API_KEY: 'sandbox-key' }, bin }));
    } finally {
      await sandbox.stop();
    }
  }
}
console.log(`\nscale: ${TOTAL} files in ${FOLDERS} folders, --entity-from dir (targets: dry run < 30 s and < 250 MB)`);
table(rows);
if (BUILDS.length > 1) console.log(`after/before (files/s): ${beforeAfter(rates)}`);
