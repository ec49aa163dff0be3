"""event_waiters on asyncio (uvloop with --uvloop): N tasks wait on one
Event, which is set. seconds = from set() until all are awaited;
total_seconds includes creating the tasks."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("event_waiters")
N = b.arg_n(10_000)


async def main():
    ev, ready = asyncio.Event(), [0]

    async def waiter():
        ready[0] += 1
        await ev.wait()

    t0 = b.now()
    tasks = [asyncio.create_task(waiter()) for _ in range(N)]
    while ready[0] < N:
        await asyncio.sleep(0)
    t1 = b.now()
    ev.set()
    for task in tasks:
        await task
    t2 = b.now()
    return t2 - t1, t2 - t0


SECONDS, TOTAL = run(main())
b.report("event_waiters", IMPL, N, SECONDS, None, ("total_seconds", TOTAL))
