// The node peer of bench/channel.sh: child_process IPC (process.send)
// between this process (it times) and a child it forks (this same file with
// --child). Node's IPC channel is a unix socketpair made by fork, with no
// address and no authentication: ADDRESS only says which family the point
// is, and a TCP point or a many<K> point (one channel per child, no
// connections to open) is printed as skipped=.
//
//   node bench/peers/node_channel.js SHAPE ADDRESS N [--advanced]
//
// Serialization: 'json' (node's default; impl=node) or, with --advanced,
// 'advanced' (the structured clone of v8.serialize; impl=node-advanced).
// The shapes are those of bench/channel/curio_channel.lua: oneway (N small
// objects sent, respecting send()'s backlog signal: when it returns false
// the next send waits for its callback; then "end", and the child's
// count), roundtrip (each echoed), bulk (N messages of 16 MiB: a string
// under json, a Buffer under advanced; then "end" and the count). The clock
// starts at the child's first message ("ready"). CPU over the same window:
// parent_cpu (process.cpuUsage), child_cpu (/proc/PID/stat, 10 ms ticks),
// cpu_us_per_op, as the other programs report them.
'use strict';
const { fork } = require('child_process');
const fs = require('fs');

const advanced = process.argv.includes('--advanced');
const isChild = process.argv.includes('--child');
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [shape, address] = args;
let n = Math.max(1, Math.floor(Number(args[2])));
const unix = address.includes('/');
const bench = `channel_${shape}_${unix ? 'unix' : 'tcp'}`;
const impl = advanced ? 'node-advanced' : 'node';
const BULK = 16 * 1024 * 1024;

function small(i) { // the small table, the same in every implementation
  return { seq: i, kind: 'job', name: 'alpha', x: 1.5, y: -2.25, count: 42 };
}

function procCpu(pid) { // CPU seconds (user + system) of process pid so far, from /proc
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function skip(why) {
  console.log([`bench=${bench}`, `impl=${impl}`, `skipped=${why}`].join('\n'));
  process.exit(0);
}

if (isChild) {
  let count = 0;
  process.on('message', (m) => {
    if (m === 'end') {
      if (shape !== 'roundtrip') process.send(count);
      return;
    }
    if (shape === 'roundtrip') {
      process.send(m);
    } else {
      if (shape === 'bulk' && m.length !== BULK) throw new Error('bad bulk message');
      count += 1;
    }
  });
  process.send('ready');
  // exits when the parent disconnects the channel
} else {
  if (!unix) skip("node's IPC channel is a unix socketpair (no TCP)");
  if (shape.startsWith('many')) skip('one IPC channel per child process, no connections to open');
  if (!['oneway', 'roundtrip', 'bulk'].includes(shape)) skip('unknown shape');
  const child = fork(__filename, process.argv.slice(2).concat(['--child']),
    { serialization: advanced ? 'advanced' : 'json' });
  const payload = shape === 'bulk' ? (advanced ? Buffer.alloc(BULK, 'x') : 'x'.repeat(BULK)) : null;
  let t0, p0, c0;
  let i = 0;
  const done = () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const p1 = process.cpuUsage(p0);
    const cpu = (p1.user + p1.system) / 1e6;
    const childCpu = procCpu(child.pid) - c0;
    const lines = [`bench=${bench}`, `impl=${impl}`, `n=${n}`, `seconds=${seconds.toFixed(6)}`,
      `ops_per_sec=${(n / seconds).toFixed(0)}`];
    if (shape === 'bulk') lines.push(`mib_per_sec=${(n * 16 / seconds).toFixed(1)}`, `msg_bytes=${BULK}`);
    lines.push(`parent_cpu=${cpu.toFixed(2)}`, `child_cpu=${childCpu.toFixed(2)}`,
      `cpu_us_per_op=${((cpu + childCpu) / n * 1e6).toFixed(2)}`, 'auth=none', `serialization=${advanced ? 'advanced' : 'json'}`);
    console.log(lines.join('\n'));
    child.disconnect();
  };
  const pump = () => { // one way: send until the backlog says wait
    while (i < n) {
      i += 1;
      if (!child.send(payload || small(i)) && i < n) {
        i += 1; // the backlog is full: the pump resumes once this one is written
        child.send(payload || small(i), pump);
        return;
      }
    }
    child.send('end');
  };
  child.on('message', (m) => {
    if (m === 'ready') {
      t0 = process.hrtime.bigint();
      p0 = process.cpuUsage();
      c0 = procCpu(child.pid);
      if (shape === 'roundtrip') {
        i = 1;
        child.send(small(i));
      } else {
        pump();
      }
    } else if (shape === 'roundtrip') {
      if (m.seq !== i) throw new Error('bad answer');
      if (i < n) {
        i += 1;
        child.send(small(i));
      } else {
        child.send('end');
        done();
      }
    } else {
      if (m !== n) throw new Error(`the child counted ${m} of ${n}`);
      done();
    }
  });
  child.on('exit', (code) => { if (code) process.exitCode = 1; });
}
