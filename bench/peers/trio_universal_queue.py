"""universal_queue on trio: a thread started with `trio.to_thread.run_sync`
sends N integers into an unbounded memory channel, each through
`trio.from_thread.run(send.send, i)`, and one task receives them all; timed
from the start of the producer until the task received the last."""
import math

import benchlib as b

trio = b.import_trio("universal_queue")
N = b.arg_n(1_000_000)


def produce(send, n):
    for i in range(n):
        trio.from_thread.run(send.send, i)


async def main():
    send, receive = trio.open_memory_channel(math.inf)
    async with trio.open_nursery() as nursery:
        t0 = b.now()
        nursery.start_soon(trio.to_thread.run_sync, produce, send, N)
        for i in range(N):
            assert await receive.receive() == i
        seconds = b.now() - t0
    return seconds


b.report("universal_queue", "trio", N, trio.run(main))
