"""timeout_after on Python curio: N x timeout_after(1, fn), fn returns at once."""
import benchlib as b

curio = b.import_curio("timeout_after")
N = b.arg_n(100_000)


async def quick():
    return 1


async def main():
    t0 = b.now()
    for _ in range(N):
        await curio.timeout_after(1, quick)
    return b.now() - t0


b.report("timeout_after", "curio-py", N, curio.run(main))
