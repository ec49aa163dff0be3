// TLS echo server on Node.js: the tls module, each connection piped into
// itself (socket.pipe(socket), as bench/peers/node_echo_server.js over net),
// with Node's default TLS options and the certificate made for the run.
// tls.createServer leaves Nagle on, so setNoDelay(true), as in the other
// servers.
//   node bench/peers/node_tls_echo_server.js HOST PORT CERTFILE KEYFILE
'use strict';
const fs = require('fs');
const tls = require('tls');

const [host, port, certfile, keyfile] = process.argv.slice(2);

const server = tls.createServer({
  cert: fs.readFileSync(certfile),
  key: fs.readFileSync(keyfile),
}, (socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {}); // a reset peer ends only this connection
  socket.pipe(socket);
});
server.on('tlsClientError', () => {}); // a failed handshake ends only its connection
server.listen(Number(port), host);
