"""queue_bounded on trio: producer -> consumer, N items, through
a memory channel of 100 (trio's queue)."""
import benchlib as b

trio = b.import_trio("queue_bounded")
N = b.arg_n(1_000_000)


async def producer(send):
    for i in range(N):
        await send.send(i)


async def consumer(receive):
    for _ in range(N):
        await receive.receive()


async def main():
    send, receive = trio.open_memory_channel(100)
    t0 = b.now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer, send)
        nursery.start_soon(consumer, receive)
    return b.now() - t0


b.report("queue_bounded", "trio", N, trio.run(main))
