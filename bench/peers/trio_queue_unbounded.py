"""queue_unbounded on trio: producer -> consumer, N items, through
an unbounded memory channel (trio's queue)."""
import math

import benchlib as b

trio = b.import_trio("queue_unbounded")
N = b.arg_n(1_000_000)


async def producer(send):
    for i in range(N):
        await send.send(i)


async def consumer(receive):
    for _ in range(N):
        await receive.receive()


async def main():
    send, receive = trio.open_memory_channel(math.inf)
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer, send)
        nursery.start_soon(consumer, receive)
    return b.now() - t0


b.report("queue_unbounded", "trio", N, trio.run(main))
