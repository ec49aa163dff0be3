"""spawn_many on Python curio: spawn N empty tasks first (all alive at
once), then join them all; seconds = from the first spawn to the last join."""
import benchlib as b

curio = b.import_curio("spawn_many")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    tasks = [await curio.spawn(empty) for _ in range(N)]
    for task in tasks:
        await task.join()
    return b.now() - t0


b.report("spawn_many", "curio-py", N, curio.run(main))
