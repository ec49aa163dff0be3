"""sleepers on trio: N tasks asleep at once (0.5 s + i us each) in one
nursery; seconds = from the first start_soon until the nursery has closed."""
import benchlib as b

trio = b.import_trio("sleepers")
N = b.arg_n(100_000)


async def main():
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        for i in range(N):
            nursery.start_soon(trio.sleep, 0.5 + i * 1e-6)
    return b.now() - t0


b.report("sleepers", "trio", N, trio.run(main), None,
         ("peak_rss_kb", b.peak_rss_kb()))
