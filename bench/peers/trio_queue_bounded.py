"""queue_bounded / queue_unbounded (a link to this file) on trio: producer -> consumer, N items, through
a memory channel of 100, or an unbounded one (trio's queue)."""
import math
import os

import benchlib as b

BENCH = os.path.basename(__file__)[len("trio_"):-len(".py")]
BOUNDED = BENCH == "queue_bounded"

trio = b.import_trio(BENCH)
N = b.arg_n(1_000_000)


async def producer(send):
    for i in range(N):
        await send.send(i)


async def consumer(receive):
    for _ in range(N):
        await receive.receive()


async def main():
    send, receive = trio.open_memory_channel(100 if BOUNDED else math.inf)
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer, send)
        nursery.start_soon(consumer, receive)
    return b.now() - t0


b.report(BENCH, "trio", N, trio.run(main))
