// thread_roundtrip on Node.js worker_threads: N sequential postMessage round
// trips to one Worker that answers each number with the number + 1.
'use strict';
const { Worker } = require('worker_threads');

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const n = args.length ? Math.max(1, Math.floor(Number(args[0]))) : 10000;

const worker = new Worker(
  "require('worker_threads').parentPort.on('message', (x) => " +
  "require('worker_threads').parentPort.postMessage(x + 1));",
  { eval: true });

worker.once('online', () => {
  let i = 1;
  const t0 = process.hrtime.bigint();
  worker.on('message', (r) => {
    if (r !== i + 1) throw new Error('bad answer ' + r);
    if (i < n) {
      i += 1;
      worker.postMessage(i);
      return;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(['bench=thread_roundtrip', 'impl=node', 'n=' + n,
      'seconds=' + seconds.toFixed(6), 'ops_per_sec=' + (n / seconds).toFixed(0)].join('\n'));
    worker.terminate();
  });
  worker.postMessage(i);
});
