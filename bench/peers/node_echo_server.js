// Echo server on Node.js: the net module, each connection piped into itself
// (socket.pipe(socket), the echo server of Node's net documentation).
// net.createServer leaves Nagle on by default (noDelay: false; only http
// turns it off), so noDelay: true, as in the other servers.
//   node bench/peers/node_echo_server.js HOST PORT
'use strict';
const net = require('net');

const [host = '127.0.0.1', port = '25000'] = process.argv.slice(2);

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {}); // a reset peer ends only this connection
  socket.pipe(socket);
});
server.listen(Number(port), host);
