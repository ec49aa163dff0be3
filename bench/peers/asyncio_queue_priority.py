"""queue_priority on asyncio (uvloop with --uvloop): producer -> consumer, N items, PriorityQueue(100), priorities
i * 7919 % 1009."""
import asyncio

import benchlib as b

BENCH = "queue_priority"

IMPL, run = b.asyncio_impl(BENCH)
N = b.arg_n(1_000_000)


async def producer(q):
    for i in range(N):
        await q.put((i * 7919 % 1009, i))


async def consumer(q):
    for _ in range(N):
        await q.get()


async def main():
    q = asyncio.PriorityQueue(100)
    t0 = b.now()
    t1 = asyncio.create_task(producer(q))
    t2 = asyncio.create_task(consumer(q))
    await t1
    await t2
    return b.now() - t0


b.report(BENCH, IMPL, N, run(main()))
