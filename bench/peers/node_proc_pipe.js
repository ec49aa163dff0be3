// proc_pipe on Node.js: child_process.spawn('head', ['-c', BYTES,
// '/dev/zero']) with stdout a pipe, its 'data' Buffers collected in an array
// and counted; at the end of stream they are joined once (Buffer.concat)
// into one Buffer, whose length is checked, and the clock stops when both
// the stream's end and the exit ('close') have been seen. MIB is the first
// argument (default 100). n=1, ops_per_sec = 1/seconds; extra lines: bytes,
// mib, mib_per_sec, read_seconds (spawn to end of stream, before the join),
// chunks.
'use strict';
const { spawn } = require('child_process');

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const mib = args.length ? Math.max(1, Math.floor(Number(args[0]))) : 100;
const bytes = mib * 1048576;

const t0 = process.hrtime.bigint();
const child = spawn('head', ['-c', String(bytes), '/dev/zero'],
  { stdio: ['inherit', 'pipe', 'inherit'] });
const chunks = [];
let count = 0;
let out;
let tEof;
child.stdout.on('data', (chunk) => {
  chunks.push(chunk);
  count += chunk.length;
});
child.stdout.on('end', () => {
  tEof = process.hrtime.bigint();
  out = Buffer.concat(chunks, count);
});
child.on('close', (code) => {
  const t1 = process.hrtime.bigint();
  if (code !== 0 || out.length !== bytes || count !== bytes) throw new Error('short output');
  const seconds = Number(t1 - t0) / 1e9;
  console.log(['bench=proc_pipe', 'impl=node', 'n=1', 'seconds=' + seconds.toFixed(6),
    'ops_per_sec=' + (1 / seconds).toFixed(3), 'bytes=' + bytes, 'mib=' + mib,
    'mib_per_sec=' + (mib / seconds).toFixed(1),
    'read_seconds=' + (Number(tEof - t0) / 1e9).toFixed(6), 'chunks=' + chunks.length].join('\n'));
});
