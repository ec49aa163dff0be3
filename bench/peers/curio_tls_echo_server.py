"""TLS echo server on Python curio: bench/peers/curio_echo_server.py (the
How-To's echo server: client.recv(100000) / client.sendall(data) until the
end of stream) with tcp_server(..., ssl=ctx), ctx from curio.ssl (curio's
async wrapper of the standard library's ssl module) with the certificate
made for the run. TCP_NODELAY on each accepted socket, as in the other
servers; no line printed per connection (the handshake benchmark makes
thousands).

    PYTHONPATH=<curio snapshot> python3 bench/peers/curio_tls_echo_server.py HOST PORT CERTFILE KEYFILE
"""
import os
import sys

src = os.environ.get("CURIO_PY_SRC")
if src:
    sys.path.insert(0, src)

from socket import IPPROTO_TCP, TCP_NODELAY  # noqa: E402

from curio import run, ssl, tcp_server  # noqa: E402


async def echo_client(client, addr):
    client.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    while True:
        data = await client.recv(100000)
        if not data:
            break
        await client.sendall(data)


if __name__ == '__main__':
    host, port, certfile, keyfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    run(tcp_server(host, port, echo_client, ssl=ctx))
