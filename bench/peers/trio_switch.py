"""switch on trio: two tasks ping-pong with sleep(0) (a checkpoint);
N = total switches. Tasks are joined by their nursery."""
import benchlib as b

trio = b.import_trio("switch")
HALF = b.arg_n(1_000_000) // 2


async def pinger():
    for _ in range(HALF):
        await trio.sleep(0)


async def main():
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pinger)
        nursery.start_soon(pinger)
    return b.now() - t0


b.report("switch", "trio", 2 * HALF, trio.run(main))
