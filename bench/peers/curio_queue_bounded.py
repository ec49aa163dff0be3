"""queue_bounded on Python curio: producer -> consumer, N items, Queue(100)."""
import benchlib as b

curio = b.import_curio("queue_bounded")
N = b.arg_n(1_000_000)


async def producer(q):
    for i in range(N):
        await q.put(i)


async def consumer(q):
    for _ in range(N):
        await q.get()


async def main():
    q = curio.Queue(100)
    t0 = b.now()
    t1 = await curio.spawn(producer, q)
    t2 = await curio.spawn(consumer, q)
    await t1.join()
    await t2.join()
    return b.now() - t0


b.report("queue_bounded", "curio-py", N, curio.run(main))
