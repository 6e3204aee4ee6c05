// Loaded with `node --require` by the benchmarks: writes the process's peak RSS (kB) on exit.
// Linux's VmHWM is this process's own high-water mark. getrusage's maxRSS is not: it keeps the
// forked parent's RSS across exec, so a benchmark holding 400 MB read 400 MB for every child.
const { readFileSync, writeFileSync } = require('node:fs');
function peakKb() {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
  } catch {
    return process.resourceUsage().maxRSS;
  }
}
process.on('exit', () => {
  if (process.env.PEAK_RSS_FILE) writeFileSync(process.env.PEAK_RSS_FILE, String(peakKb()));
});
