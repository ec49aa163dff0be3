"""spawn_join on trio: start then wait for N empty tasks, one by one.
trio has no task.join(): each task gets an Event that it sets as its last
act, and the spawner waits on it (tasks run in one long-lived nursery)."""
import benchlib as b

trio = b.import_trio("spawn_join")
N = b.arg_n(100_000)


async def child(done):
    done.set()


async def main():
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        for _ in range(N):
            done = trio.Event()
            nursery.start_soon(child, done)
            await done.wait()
    return b.now() - t0


b.report("spawn_join", "trio", N, trio.run(main))
