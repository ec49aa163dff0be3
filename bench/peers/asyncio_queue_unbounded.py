"""queue_unbounded on asyncio (uvloop with --uvloop): producer -> consumer,
N items, an unbounded Queue."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("queue_unbounded")
N = b.arg_n(1_000_000)


async def producer(q):
    for i in range(N):
        await q.put(i)


async def consumer(q):
    for _ in range(N):
        await q.get()


async def main():
    q = asyncio.Queue(0)
    t0 = b.now()
    t1 = asyncio.create_task(producer(q))
    t2 = asyncio.create_task(consumer(q))
    await t1
    await t2
    return b.now() - t0


b.report("queue_unbounded", IMPL, N, run(main()))
