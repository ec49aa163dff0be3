"""switch on asyncio (uvloop with --uvloop): two tasks ping-pong with
sleep(0); N = total switches."""
import asyncio

import benchlib as b

IMPL, run = b.asyncio_impl("switch")
HALF = b.arg_n(1_000_000) // 2


async def pinger():
    for _ in range(HALF):
        await asyncio.sleep(0)


async def main():
    t0 = b.now()
    t1 = asyncio.create_task(pinger())
    t2 = asyncio.create_task(pinger())
    await t1
    await t2
    return b.now() - t0


b.report("switch", IMPL, 2 * HALF, run(main()))
