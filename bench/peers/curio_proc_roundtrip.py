"""proc_roundtrip on Python curio: N sequential
`await curio.run_in_process(f, i)` calls of a trivial function (returns its
argument + 1) from one task, after one untimed warm-up call that starts the
worker. curio's pool (at most cpu_count workers, started with
multiprocessing's 'spawn' context, reused last-in first-out) sends each call
pickled over a pipe; sequential calls all go to the one warm worker.
The worker re-imports this file as __mp_main__: only `inc` is at top level."""
import benchlib as b


def inc(x):
    return x + 1


if __name__ == "__main__":
    curio = b.import_curio("proc_roundtrip")
    N = b.arg_n(200)

    async def main():
        assert await curio.run_in_process(inc, 0) == 1  # warm-up
        t0 = b.now()
        for i in range(1, N + 1):
            assert await curio.run_in_process(inc, i) == i + 1
        return b.now() - t0

    b.report("proc_roundtrip", "curio-py", N, curio.run(main))
