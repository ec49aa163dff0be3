"""lock_handoff on asyncio (uvloop with --uvloop): two tasks loop "acquire;
sleep(0); release"; asyncio.Lock is FIFO-fair (a waiter is never overtaken),
so it passes back and forth; N = total acquisitions."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("lock_handoff")
HALF = b.arg_n(1_000_000) // 2


async def worker(lock):
    for _ in range(HALF):
        await lock.acquire()
        await asyncio.sleep(0)
        lock.release()


async def main():
    lock = asyncio.Lock()
    t0 = b.now()
    t1 = asyncio.create_task(worker(lock))
    t2 = asyncio.create_task(worker(lock))
    await t1
    await t2
    return b.now() - t0


b.report("lock_handoff", IMPL, 2 * HALF, run(main()))
