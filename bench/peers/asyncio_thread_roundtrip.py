"""thread_roundtrip on asyncio (uvloop with --uvloop): N sequential
`await asyncio.to_thread(f, i)` calls of a trivial function (returns its
argument + 1) from one coroutine. The default executor is a 64-thread
ThreadPoolExecutor, the size of curio-lua's pool."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import benchlib as b

IMPL, run = b.asyncio_impl("thread_roundtrip")
N = b.arg_n(10_000)


def inc(x):
    return x + 1


async def main():
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(64))
    t0 = b.now()
    for i in range(N):
        assert await asyncio.to_thread(inc, i) == i + 1
    return b.now() - t0


b.report("thread_roundtrip", IMPL, N, run(main()))
