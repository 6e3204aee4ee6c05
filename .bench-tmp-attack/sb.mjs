import { startSandbox } from '/work/main/dist/sandbox/server.js';
import { writeFileSync } from 'node:fs';
const faults = JSON.parse(process.env.FAULTS || '{}');
const sb = await startSandbox({ faults, ...(process.env.SBKEY ? { apiKey: process.env.SBKEY } : {}) });
writeFileSync(process.env.URLFILE, sb.url);
// dump counts of stored names per entity on SIGUSR2 / periodically to a file
setInterval(() => {
  const counts = {};
  for (const m of sb.stored) { const k = m.objectId + '/' + m.name; counts[k] = (counts[k] || 0) + 1; }
  writeFileSync(process.env.URLFILE + '.stored.json', JSON.stringify({ total: sb.stored.length, requests: sb.requests.length, counts }));
}, 100);
process.on("SIGTERM", () => process.exit(0));
