"""sleepers on Python curio: N tasks asleep at once (0.5 s + i us each);
seconds = from the first spawn until all have woken and are joined."""
import benchlib as b

curio = b.import_curio("sleepers")
N = b.arg_n(100_000)


async def sleeper(d):
    await curio.sleep(d)


async def main():
    t0 = b.now()
    tasks = [await curio.spawn(sleeper, 0.5 + i * 1e-6) for i in range(N)]
    for task in tasks:
        await task.join()
    return b.now() - t0


b.report("sleepers", "curio-py", N, curio.run(main), None,
         ("peak_rss_kb", b.peak_rss_kb()))
