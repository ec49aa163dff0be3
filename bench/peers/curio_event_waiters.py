"""event_waiters on Python curio: N tasks wait on one Event, which is set.
seconds = from set() until all are joined; total_seconds includes spawning."""
import benchlib as b

curio = b.import_curio("event_waiters")
N = b.arg_n(10_000)


async def main():
    ev, ready = curio.Event(), [0]

    async def waiter():
        ready[0] += 1
        await ev.wait()

    t0 = b.now()
    tasks = [await curio.spawn(waiter) for _ in range(N)]
    while ready[0] < N:
        await curio.sleep(0)
    t1 = b.now()
    await ev.set()
    for task in tasks:
        await task.join()
    t2 = b.now()
    return t2 - t1, t2 - t0


SECONDS, TOTAL = curio.run(main)
b.report("event_waiters", "curio-py", N, SECONDS, None, ("total_seconds", TOTAL))
