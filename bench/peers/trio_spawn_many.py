"""spawn_many on trio: start_soon N empty tasks in one nursery (all alive
at once), then leave the nursery, which waits for them all (trio has no
join); seconds = from the first start_soon until the nursery has closed."""
import benchlib as b

trio = b.import_trio("spawn_many")
N = b.arg_n(100_000)


async def empty():
    pass


async def main():
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        for _ in range(N):
            nursery.start_soon(empty)
    return b.now() - t0


b.report("spawn_many", "trio", N, trio.run(main))
