"""universal_queue on Python curio: a plain threading.Thread puts N integers
into an unbounded curio.UniversalQueue (`q.put(i)`, the synchronous side)
and one task gets them all (`await q.get()`); timed from the start of the
producer until the task got the last."""
import threading

import benchlib as b

curio = b.import_curio("universal_queue")
N = b.arg_n(1_000_000)


def produce(q, n):
    for i in range(n):
        q.put(i)


async def main():
    q = curio.UniversalQueue()
    t0 = b.now()
    producer = threading.Thread(target=produce, args=(q, N))
    producer.start()
    for i in range(N):
        assert await q.get() == i
    seconds = b.now() - t0
    producer.join()
    return seconds


b.report("universal_queue", "curio-py", N, curio.run(main))
