// proc_roundtrip on Node.js: N sequential message round trips to one worker
// process started with child_process.fork (this same file, argument
// --worker), which answers each number with the number + 1 through
// process.send (IPC channel, JSON serialization). One untimed warm-up round
// trip first, after which the worker is running (the pool is warm).
'use strict';
const { fork } = require('child_process');

if (process.argv.includes('--worker')) {
  process.on('message', (x) => process.send(x + 1));
  // exits when the parent disconnects the channel
} else {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const n = args.length ? Math.max(1, Math.floor(Number(args[0]))) : 200;

  const child = fork(__filename, ['--worker']);
  let i = 0; // 0: the warm-up round trip
  let t0;
  child.on('message', (r) => {
    if (r !== i + 1) throw new Error('bad answer ' + r);
    if (i === 0) t0 = process.hrtime.bigint();
    if (i < n) {
      i += 1;
      child.send(i);
      return;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(['bench=proc_roundtrip', 'impl=node', 'n=' + n,
      'seconds=' + seconds.toFixed(6), 'ops_per_sec=' + (n / seconds).toFixed(0)].join('\n'));
    child.disconnect();
  });
  child.send(i);
}
