"""thread_roundtrip on trio: N sequential `trio.to_thread.run_sync(f, i)`
calls of a trivial function (returns its argument + 1) from one task."""
import benchlib as b

trio = b.import_trio("thread_roundtrip")
N = b.arg_n(10_000)


def inc(x):
    return x + 1


async def main():
    t0 = b.now()
    for i in range(N):
        assert await trio.to_thread.run_sync(inc, i) == i + 1
    return b.now() - t0


b.report("thread_roundtrip", "trio", N, trio.run(main))
