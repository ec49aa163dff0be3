"""taskgroup on trio: a nursery (trio's task group) starts and collects N
empty tasks."""
import benchlib as b

trio = b.import_trio("taskgroup")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        for _ in range(N):
            nursery.start_soon(empty)
    return b.now() - t0


b.report("taskgroup", "trio", N, trio.run(main))
