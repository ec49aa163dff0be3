"""sleepers on asyncio (uvloop with --uvloop): N tasks asleep at once
(0.5 s + i us each); seconds = from the first spawn until all are awaited."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("sleepers")
N = b.arg_n(100_000)


async def main():
    t0 = b.now()
    tasks = [asyncio.create_task(asyncio.sleep(0.5 + i * 1e-6))
             for i in range(N)]
    for task in tasks:
        await task
    return b.now() - t0


b.report("sleepers", IMPL, N, run(main()), None,
         ("peak_rss_kb", b.peak_rss_kb()))
