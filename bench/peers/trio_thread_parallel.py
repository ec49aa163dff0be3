"""thread_parallel on trio: N `trio.to_thread.run_sync` calls of a trivial
function (returns its argument + 1), 64 in flight at once: 64 tasks in a
nursery each make N/64 sequential calls (the first N % 64 one more), under
one CapacityLimiter(64) (trio's default limiter allows 40)."""
import benchlib as b

trio = b.import_trio("thread_parallel")
N = b.arg_n(10_000)
WIDTH = 64


def inc(x):
    return x + 1


async def caller(calls, limiter):
    for i in range(calls):
        assert await trio.to_thread.run_sync(inc, i, limiter=limiter) == i + 1


async def main():
    limiter = trio.CapacityLimiter(WIDTH)
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        for w in range(WIDTH):
            nursery.start_soon(caller, N // WIDTH + (w < N % WIDTH), limiter)
    return b.now() - t0


b.report("thread_parallel", "trio", N, trio.run(main))
