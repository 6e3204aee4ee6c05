// The local sandbox for the benchmarks, in its own process so its work does not count against
// the client: sink mode (accepts and counts, keeps nothing) or storing. Takes startSandbox's
// options as JSON; prints its URL, then on SIGTERM the answers it gave, as JSON, with the
// times the first request came and the last answer left (ms, this process's clock).
import { startSandbox } from '../dist/sandbox/server.js';

let first;
let last;
const sandbox = await startSandbox({
  ...JSON.parse(process.argv[2] ?? '{}'),
  onRequest: (_record, ms) => {
    const now = performance.now();
    first ??= now - ms;
    last = now;
  },
});
console.log(sandbox.url);
process.on('SIGTERM', async () => {
  const statuses = {};
  for (const r of sandbox.requests) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  console.log(
    JSON.stringify({ requests: sandbox.requests.length, statuses, spanMs: first === undefined ? 0 : last - first }),
  );
  await sandbox.close();
  process.exit(0);
});
