"""taskgroup on asyncio (uvloop with --uvloop): an asyncio.TaskGroup
(Python 3.11+) spawns and collects N empty tasks."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("taskgroup")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    async with asyncio.TaskGroup() as g:
        for _ in range(N):
            g.create_task(empty())
    return b.now() - t0


b.report("taskgroup", IMPL, N, run(main()))
