"""timeout_after on asyncio (uvloop with --uvloop): N x `async with
asyncio.timeout(1)` (the analogue of curio's timeout_after; wait_for would
add a task per call) around a coroutine that returns at once."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("timeout_after")
N = b.arg_n(100_000)


async def quick():
    return 1


async def main():
    t0 = b.now()
    for _ in range(N):
        async with asyncio.timeout(1):
            await quick()
    return b.now() - t0


b.report("timeout_after", IMPL, N, run(main()))
