// The HTTP peer of examples/http_server.lua on Node.js's http module, with
// the same replies: GET / -> 200 "Hello, world!\n", POST /echo -> the body,
// 404 for other paths, 405 for other methods; Content-Type text/plain, a
// Content-Length, keep-alive. Node's own extra headers are turned off (Date,
// Keep-Alive: timeout=5) so both servers send the same bytes but for the
// order of the headers.
//   node bench/peers/node_http_server.js HOST PORT
'use strict';
const http = require('http');

const [host = '127.0.0.1', port = '8080'] = process.argv.slice(2);
const HELLO = Buffer.from('Hello, world!\n');

function reply(res, status, body, extra) {
  res.sendDate = false;
  res.writeHead(status, Object.assign({
    'Content-Type': 'text/plain',
    'Content-Length': body.length,
  }, extra));
  res.end(body);
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/') {
    if (req.method === 'GET') return reply(res, 200, HELLO);
    return reply(res, 405, 'Method Not Allowed\n', { Allow: 'GET' });
  }
  if (path === '/echo') {
    if (req.method !== 'POST') return reply(res, 405, 'Method Not Allowed\n', { Allow: 'POST' });
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => reply(res, 200, Buffer.concat(chunks)));
    return undefined;
  }
  return reply(res, 404, 'Not Found\n');
});
server.keepAliveTimeout = 0; // no idle timeout, hence no Keep-Alive header
server.listen(Number(port), host);
