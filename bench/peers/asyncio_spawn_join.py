"""spawn_join on asyncio (uvloop with --uvloop): create then await N empty
tasks, one by one."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("spawn_join")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    for _ in range(N):
        await asyncio.create_task(empty())
    return b.now() - t0


b.report("spawn_join", IMPL, N, run(main()))
