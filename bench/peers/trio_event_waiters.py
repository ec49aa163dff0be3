"""event_waiters on trio: N tasks wait on one Event, which is set.
seconds = from set() until the nursery holding the waiters has closed
(trio has no join); total_seconds includes starting the tasks."""
import benchlib as b

trio = b.import_trio("event_waiters")
N = b.arg_n(10_000)


async def main():
    ev, ready = trio.Event(), [0]

    async def waiter():
        ready[0] += 1
        await ev.wait()

    t0 = b.now()
    async with trio.open_nursery() as nursery:
        for _ in range(N):
            nursery.start_soon(waiter)
        while ready[0] < N:
            await trio.sleep(0)
        t1 = b.now()
        ev.set()
    t2 = b.now()
    return t2 - t1, t2 - t0


SECONDS, TOTAL = trio.run(main)
b.report("event_waiters", "trio", N, SECONDS, None, ("total_seconds", TOTAL))
