// proc_spawn on Node.js: N sequential child_process.spawn('true'), each
// 'exit' event checking the exit code and spawning the next, after one
// untimed warm-up spawn. The child inherits stdin, stdout and stderr
// (stdio: 'inherit': no pipes, as in the other implementations; Node's
// default would make three).
'use strict';
const { spawn } = require('child_process');

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const n = args.length ? Math.max(1, Math.floor(Number(args[0]))) : 200;

let done = -1; // -1: the warm-up spawn
let t0;
function next() {
  spawn('true', { stdio: 'inherit' }).on('exit', (code, signal) => {
    if (code !== 0) throw new Error('true failed: ' + code + ' ' + signal);
    done += 1;
    if (done === 0) t0 = process.hrtime.bigint();
    if (done < n) {
      next();
      return;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(['bench=proc_spawn', 'impl=node', 'n=' + n,
      'seconds=' + seconds.toFixed(6), 'ops_per_sec=' + (n / seconds).toFixed(0)].join('\n'));
  });
}
next();
