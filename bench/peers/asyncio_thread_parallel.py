"""thread_parallel on asyncio (uvloop with --uvloop): N `asyncio.to_thread`
calls of a trivial function (returns its argument + 1), 64 in flight at
once: 64 coroutines each make N/64 sequential calls (the first N % 64 one
more). The default executor is a 64-thread ThreadPoolExecutor."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import benchlib as b

IMPL, run = b.asyncio_impl("thread_parallel")
N = b.arg_n(10_000)
WIDTH = 64


def inc(x):
    return x + 1


async def caller(calls):
    for i in range(calls):
        assert await asyncio.to_thread(inc, i) == i + 1


async def main():
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(WIDTH))
    t0 = b.now()
    await asyncio.gather(*(caller(N // WIDTH + (w < N % WIDTH))
                           for w in range(WIDTH)))
    return b.now() - t0


b.report("thread_parallel", IMPL, N, run(main()))
