"""lock_handoff on trio: two tasks loop "acquire; sleep(0); release";
trio.Lock is fair (release hands it to the first waiter), so it passes back
and forth; N = total acquisitions."""
import benchlib as b

trio = b.import_trio("lock_handoff")
HALF = b.arg_n(1_000_000) // 2


async def worker(lock):
    for _ in range(HALF):
        await lock.acquire()
        await trio.sleep(0)
        lock.release()


async def main():
    lock = trio.Lock()
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker, lock)
        nursery.start_soon(worker, lock)
    return b.now() - t0


b.report("lock_handoff", "trio", 2 * HALF, trio.run(main))
