"""lock_handoff on Python curio: two tasks loop "acquire; sleep(0); release"
so the (FIFO, hand-off) Lock passes back and forth; N = total acquisitions."""
import benchlib as b

curio = b.import_curio("lock_handoff")
HALF = b.arg_n(1_000_000) // 2


async def worker(lock):
    for _ in range(HALF):
        await lock.acquire()
        await curio.sleep(0)
        await lock.release()


async def main():
    lock = curio.Lock()
    t0 = b.now()
    t1 = await curio.spawn(worker, lock)
    t2 = await curio.spawn(worker, lock)
    await t1.join()
    await t2.join()
    return b.now() - t0


b.report("lock_handoff", "curio-py", 2 * HALF, curio.run(main))
