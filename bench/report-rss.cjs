// Preloaded into a benchmarked Node process (`node --require bench/report-rss.cjs ...`): on exit, writes the
// process's peak resident set size to stderr as `peak-rss-kb=N`.
const fs = require('node:fs');
process.on('exit', () => {
  fs.writeSync(2, `\npeak-rss-kb=${process.resourceUsage().maxRSS}\n`);
});
