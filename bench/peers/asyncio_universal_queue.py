"""universal_queue on asyncio (uvloop with --uvloop): a plain
threading.Thread puts N integers into an unbounded asyncio.Queue through
`loop.call_soon_threadsafe(q.put_nowait, i)` and one coroutine gets them all
(`await q.get()`); timed from the start of the producer until the coroutine
got the last."""
import asyncio
import threading

import benchlib as b

IMPL, run = b.asyncio_impl("universal_queue")
N = b.arg_n(1_000_000)


def produce(loop, q, n):
    for i in range(n):
        loop.call_soon_threadsafe(q.put_nowait, i)


async def main():
    q = asyncio.Queue()
    t0 = b.now()
    producer = threading.Thread(target=produce, args=(asyncio.get_running_loop(), q, N))
    producer.start()
    for i in range(N):
        assert await q.get() == i
    seconds = b.now() - t0
    producer.join()
    return seconds


b.report("universal_queue", IMPL, N, run(main()))
