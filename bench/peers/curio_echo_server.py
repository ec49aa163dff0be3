"""Echo server on Python curio: the How-To's TCP echo server (tcp_server,
then per connection client.recv(100000) / client.sendall(data) until the
end of stream, printing a line per connection). One line added: TCP_NODELAY
on each accepted socket (curio leaves Nagle on), as in the other servers.

    PYTHONPATH=<curio snapshot> python3 bench/peers/curio_echo_server.py HOST PORT
"""
import os
import sys

src = os.environ.get("CURIO_PY_SRC")
if src:
    sys.path.insert(0, src)

from socket import IPPROTO_TCP, TCP_NODELAY  # noqa: E402

from curio import run, tcp_server  # noqa: E402


async def echo_client(client, addr):
    client.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)  # the one addition
    print('Connection from', addr)
    while True:
        data = await client.recv(100000)
        if not data:
            break
        await client.sendall(data)
    print('Connection closed')


if __name__ == '__main__':
    host = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 25000
    run(tcp_server, host, port, echo_client)
