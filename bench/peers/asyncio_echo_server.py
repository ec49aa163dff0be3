"""Echo server on asyncio (uvloop with --uvloop): the Protocol form,
data_received -> transport.write, one of the forms of uvloop's own echo
benchmark (its others: loop.sock_recv/sock_sendall and streams; the
Protocol does the least per message: no task, no StreamReader). asyncio and uvloop set TCP_NODELAY on TCP
transports themselves.

    python3 bench/peers/asyncio_echo_server.py HOST PORT [--uvloop]
"""
import asyncio
import sys

args = [a for a in sys.argv[1:] if not a.startswith('--')]
HOST = args[0] if args else '127.0.0.1'
PORT = int(args[1]) if len(args) > 1 else 25000


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, HOST, PORT)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    if '--uvloop' in sys.argv:
        try:
            import uvloop
        except ImportError:
            sys.exit('uvloop not installed')
        uvloop.install()
    asyncio.run(main())
