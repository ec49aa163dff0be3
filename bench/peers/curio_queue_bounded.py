"""queue_bounded / queue_unbounded (a link to this file) on Python curio: producer -> consumer, N items, Queue(100)."""
import os

import benchlib as b

BENCH = os.path.basename(__file__)[len("curio_"):-len(".py")]
BOUNDED = BENCH == "queue_bounded"

curio = b.import_curio(BENCH)
N = b.arg_n(1_000_000)


async def producer(q):
    for i in range(N):
        await q.put(i)


async def consumer(q):
    for _ in range(N):
        await q.get()


async def main():
    q = curio.Queue(100 if BOUNDED else 0)
    t0 = b.now()
    t1 = await curio.spawn(producer, q)
    t2 = await curio.spawn(consumer, q)
    await t1.join()
    await t2.join()
    return b.now() - t0


b.report(BENCH, "curio-py", N, curio.run(main))
