"""spawn_join on Python curio: spawn then join N empty tasks, one by one."""
import benchlib as b

curio = b.import_curio("spawn_join")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    for _ in range(N):
        task = await curio.spawn(empty)
        await task.join()
    return b.now() - t0


b.report("spawn_join", "curio-py", N, curio.run(main))
