"""The curio-py peer of bench/channel.sh: Python curio's Channel (values
pickled, HMAC authentication as multiprocessing's) between this process
(it listens, accepts and times) and a child it starts (this same file with
--child, which connects).

    python3 bench/peers/curio_channel.py SHAPE ADDRESS N [--noauth]

The shapes, the address and the block printed are those of
bench/channel/curio_channel.lua (impl=curio-py). curio's Channel.connect
does not retry, so the parent binds before it starts the child."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import benchlib as b  # noqa: E402

argv = [a for a in sys.argv[1:] if not a.startswith("--")]
is_child = "--child" in sys.argv
auth = "--noauth" not in sys.argv
shape, address, n = argv[0], argv[1], int(argv[2])
conns = int(shape[4:]) if shape.startswith("many") else None
unix = "/" in address
bench = "channel_%s_%s" % (shape, "unix" if unix else "tcp")
curio = b.import_curio(bench)
from curio.channel import Channel  # noqa: E402

if unix:
    where, family = address, socket.AF_UNIX
else:
    host, port = address.rsplit(":", 1)
    where, family = (host, int(port)), socket.AF_INET
key = {"authkey": b"curio channel bench key"} if auth else {}
BULK = 16 * 1024 * 1024


def proc_cpu(pid):
    """CPU seconds (user + system) of process pid so far, from /proc"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def small(i):
    """the small table, the same in every implementation"""
    return {"seq": i, "kind": "job", "name": "alpha", "x": 1.5, "y": -2.25, "count": 42}


async def serve(c):
    async with c:
        if shape == "oneway":
            count = 0
            while await c.recv() != "end":
                count += 1
            await c.send(count)
        elif shape == "bulk":
            count = 0
            while True:
                s = await c.recv_bytes()
                if not s:
                    break
                assert len(s) == BULK
                count += 1
            await c.send(count)
        else:
            while True:
                v = await c.recv()
                if v == "end":
                    break
                await c.send(v)
        # alive until the parent has read this process's CPU time and closes
        try:
            await c.recv()
            raise AssertionError("a message after the end")
        except EOFError:
            pass


async def child():
    ch = Channel(where, family)
    # one connection after the other (the parent accepts them in turn, each
    # connect with its authentication within curio's 1 s), then a task each
    cs = [await ch.connect(**key) for _ in range(conns or 1)]
    tasks = [await curio.spawn(serve, c) for c in cs]
    for t in tasks:
        await t.join()


async def round_trips(c, first, last):
    for i in range(first, last + 1):
        await c.send(small(i))
        assert (await c.recv())["seq"] == i
    await c.send("end")


async def parent():
    global n
    ch = Channel(where, family)
    ch.bind()
    proc = subprocess.Popen([sys.executable] + sys.argv + ["--child"])
    payload = b"x" * BULK if shape == "bulk" else None
    cs = [await ch.accept(**key) for _ in range(conns or 1)]
    t0, p0, c0 = b.now(), time.process_time(), proc_cpu(proc.pid)
    if shape == "oneway":
        c = cs[0]
        for i in range(1, n + 1):
            await c.send(small(i))
        await c.send("end")
        assert await c.recv() == n
    elif shape == "bulk":
        c = cs[0]
        for _ in range(n):
            await c.send_bytes(payload)
        await c.send_bytes(b"")
        assert await c.recv() == n
    elif conns:
        n = n // conns * conns
        per = n // conns
        tasks = [await curio.spawn(round_trips, c, k * per + 1, (k + 1) * per)
                 for k, c in enumerate(cs)]
        for t in tasks:
            await t.join()
    else:
        await round_trips(cs[0], 1, n)
    seconds, cpu = b.now() - t0, time.process_time() - p0
    child_cpu = proc_cpu(proc.pid) - c0
    for c in cs:
        await c.close()
    await ch.close()
    assert proc.wait() == 0, "the child failed"
    return seconds, cpu, child_cpu


if is_child:
    curio.run(child)
else:
    seconds, cpu, child_cpu = curio.run(parent)
    extra = [("parent_cpu", "%.2f" % cpu), ("child_cpu", "%.2f" % child_cpu),
             ("cpu_us_per_op", "%.2f" % ((cpu + child_cpu) / n * 1e6)), ("auth", "hmac" if auth else "none")]
    if shape == "bulk":
        extra = [("mib_per_sec", "%.1f" % (n * 16 / seconds)), ("msg_bytes", BULK)] + extra
    b.report(bench, "curio-py", n, seconds, None, *extra)
