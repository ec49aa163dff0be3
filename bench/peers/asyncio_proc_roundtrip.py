"""proc_roundtrip on asyncio (uvloop with --uvloop): N sequential
`await loop.run_in_executor(pool, f, i)` calls of a trivial function
(returns its argument + 1) on a concurrent.futures ProcessPoolExecutor
(default size: cpu_count; Linux's default 'fork' context), after one
untimed warm-up call that starts the workers."""
import concurrent.futures
import asyncio
import benchlib as b


def inc(x):
    return x + 1


if __name__ == "__main__":
    impl, run = b.asyncio_impl("proc_roundtrip")
    N = b.arg_n(200)

    async def main():
        loop = asyncio.get_running_loop()
        with concurrent.futures.ProcessPoolExecutor() as pool:
            assert await loop.run_in_executor(pool, inc, 0) == 1  # warm-up
            t0 = b.now()
            for i in range(1, N + 1):
                assert await loop.run_in_executor(pool, inc, i) == i + 1
            return b.now() - t0

    b.report("proc_roundtrip", impl, N, run(main()))
