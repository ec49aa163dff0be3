"""switch on Python curio: two tasks ping-pong with sleep(0); N = total."""
import benchlib as b

curio = b.import_curio("switch")
HALF = b.arg_n(1_000_000) // 2


async def pinger():
    for _ in range(HALF):
        await curio.sleep(0)


async def main():
    t0 = b.now()
    t1 = await curio.spawn(pinger)
    t2 = await curio.spawn(pinger)
    await t1.join()
    await t2.join()
    return b.now() - t0


b.report("switch", "curio-py", 2 * HALF, curio.run(main))
