// A sink server for the benchmarks, in its own process: the sandbox in sink mode (accepts
// and counts, keeps nothing). Prints its URL, then on SIGTERM the answers it gave, as JSON.
import { startSandbox } from '../dist/sandbox/server.js';

const faults = JSON.parse(process.argv[2] ?? '{}');
const sandbox = await startSandbox({ sink: true, faults });
console.log(sandbox.url);
process.on('SIGTERM', async () => {
  const statuses = {};
  for (const r of sandbox.requests) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  console.log(JSON.stringify({ requests: sandbox.requests.length, statuses }));
  await sandbox.close();
  process.exit(0);
});
