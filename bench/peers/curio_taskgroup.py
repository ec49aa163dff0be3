"""taskgroup on Python curio: a TaskGroup spawns and collects N empty tasks."""
import benchlib as b

curio = b.import_curio("taskgroup")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    async with curio.TaskGroup() as g:
        for _ in range(N):
            await g.spawn(empty)
    return b.now() - t0


b.report("taskgroup", "curio-py", N, curio.run(main))
