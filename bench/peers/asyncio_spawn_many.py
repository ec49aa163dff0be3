"""spawn_many on asyncio (uvloop with --uvloop): create N empty tasks first
(all alive at once), then gather them; seconds = from the first
create_task until gather returns."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("spawn_many")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    tasks = [asyncio.create_task(empty()) for _ in range(N)]
    await asyncio.gather(*tasks)
    return b.now() - t0


b.report("spawn_many", IMPL, N, run(main()))
