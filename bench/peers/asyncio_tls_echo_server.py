"""TLS echo server on asyncio (uvloop with --uvloop): the Protocol form of
bench/peers/asyncio_echo_server.py (data_received -> transport.write) on
loop.create_server(..., ssl=ctx), ctx the standard library's server
context (ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)) with the
certificate made for the run. asyncio and uvloop set TCP_NODELAY on TCP
transports themselves.

    python3 bench/peers/asyncio_tls_echo_server.py HOST PORT CERTFILE KEYFILE [--uvloop]
"""
import asyncio
import ssl
import sys

args = [a for a in sys.argv[1:] if not a.startswith('--')]
HOST, PORT, CERTFILE, KEYFILE = args[0], int(args[1]), args[2], args[3]


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERTFILE, KEYFILE)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, HOST, PORT, ssl=ctx)
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
