"""thread_roundtrip on Python curio: N sequential
`await curio.run_in_thread(f, i)` calls of a trivial function (returns its
argument + 1) from one task. curio's pool allows 64 threads."""
import benchlib as b

curio = b.import_curio("thread_roundtrip")
N = b.arg_n(10_000)


def inc(x):
    return x + 1


async def main():
    t0 = b.now()
    for i in range(N):
        assert await curio.run_in_thread(inc, i) == i + 1
    return b.now() - t0


b.report("thread_roundtrip", "curio-py", N, curio.run(main))
