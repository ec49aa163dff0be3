"""thread_parallel on Python curio: N `curio.run_in_thread` calls of a
trivial function (returns its argument + 1), 64 in flight at once: 64 tasks
each make N/64 sequential calls (the first N % 64 one more). curio's pool
allows 64 threads."""
import benchlib as b

curio = b.import_curio("thread_parallel")
N = b.arg_n(10_000)
WIDTH = 64


def inc(x):
    return x + 1


async def caller(calls):
    for i in range(calls):
        assert await curio.run_in_thread(inc, i) == i + 1


async def main():
    t0 = b.now()
    tasks = [await curio.spawn(caller, N // WIDTH + (w < N % WIDTH))
             for w in range(WIDTH)]
    for task in tasks:
        await task.join()
    return b.now() - t0


b.report("thread_parallel", "curio-py", N, curio.run(main))
