"""timeout_after on trio: N x `with trio.fail_after(1)` (curio's
timeout_after raises on expiry, as fail_after does) around a coroutine that
returns at once."""
import benchlib as b

trio = b.import_trio("timeout_after")
N = b.arg_n(100_000)


async def quick():
    return 1


async def main():
    t0 = b.now()
    for _ in range(N):
        with trio.fail_after(1):
            await quick()
    return b.now() - t0


b.report("timeout_after", "trio", N, trio.run(main))
