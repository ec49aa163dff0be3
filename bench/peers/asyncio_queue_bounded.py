"""queue_bounded / queue_unbounded (a link to this file) on asyncio (uvloop with --uvloop): producer -> consumer,
N items, Queue(100)."""
import asyncio

import os

import benchlib as b

BENCH = os.path.basename(__file__)[len("asyncio_"):-len(".py")]
BOUNDED = BENCH == "queue_bounded"

IMPL, run = b.asyncio_impl(BENCH)
N = b.arg_n(1_000_000)


async def producer(q):
    for i in range(N):
        await q.put(i)


async def consumer(q):
    for _ in range(N):
        await q.get()


async def main():
    q = asyncio.Queue(100 if BOUNDED else 0)
    t0 = b.now()
    t1 = asyncio.create_task(producer(q))
    t2 = asyncio.create_task(consumer(q))
    await t1
    await t2
    return b.now() - t0


b.report(BENCH, IMPL, N, run(main()))
