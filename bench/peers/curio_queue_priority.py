"""queue_priority on Python curio: producer -> consumer, N items, PriorityQueue(100), priorities i * 7919 % 1009."""
import benchlib as b

BENCH = "queue_priority"

curio = b.import_curio(BENCH)
N = b.arg_n(1_000_000)


async def producer(q):
    for i in range(N):
        await q.put((i * 7919 % 1009, i))


async def consumer(q):
    for _ in range(N):
        await q.get()


async def main():
    q = curio.PriorityQueue(100)
    t0 = b.now()
    t1 = await curio.spawn(producer, q)
    t2 = await curio.spawn(consumer, q)
    await t1.join()
    await t2.join()
    return b.now() - t0


b.report(BENCH, "curio-py", N, curio.run(main))
