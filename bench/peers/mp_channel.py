"""The multiprocessing peer of bench/channel.sh: the standard library's
multiprocessing.connection Listener and Client (values pickled, HMAC
authentication), blocking calls, between this process (it listens, accepts
and times) and a child it starts (this same file with --child).

    python3 bench/peers/mp_channel.py SHAPE ADDRESS N [--noauth]

The shapes, the address and the block printed are those of
bench/channel/curio_channel.lua (impl=multiprocessing). With no tasks, the
many<K> shape runs both sides as one thread each over K connections,
multiplexed by multiprocessing.connection.wait (one message in flight on
each connection, as there)."""
import os
import subprocess
import sys
import time
from multiprocessing.connection import Client, Listener, wait

argv = [a for a in sys.argv[1:] if not a.startswith("--")]
is_child = "--child" in sys.argv
auth = "--noauth" not in sys.argv
shape, address, n = argv[0], argv[1], int(argv[2])
conns = int(shape[4:]) if shape.startswith("many") else None
unix = "/" in address
bench = "channel_%s_%s" % (shape, "unix" if unix else "tcp")
if unix:
    where, family = address, "AF_UNIX"
else:
    host, port = address.rsplit(":", 1)
    where, family = (host, int(port)), "AF_INET"
authkey = b"curio channel bench key" if auth else None
BULK = 16 * 1024 * 1024


def proc_cpu(pid):
    """CPU seconds (user + system) of process pid so far, from /proc"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def small(i):
    """the small table, the same in every implementation"""
    return {"seq": i, "kind": "job", "name": "alpha", "x": 1.5, "y": -2.25, "count": 42}


def child():
    cs = [Client(where, family, authkey=authkey) for _ in range(conns or 1)]
    c = cs[0]
    if shape == "oneway":
        count = 0
        while c.recv() != "end":
            count += 1
        c.send(count)
    elif shape == "bulk":
        count = 0
        while True:
            s = c.recv_bytes()
            if not s:
                break
            assert len(s) == BULK
            count += 1
        c.send(count)
    else:
        live = list(cs)
        while live:
            for c in wait(live):
                v = c.recv()
                if v == "end":
                    live.remove(c)
                else:
                    c.send(v)
    for c in cs:  # alive until the parent has read this CPU time and closes
        try:
            c.recv()
            raise AssertionError("a message after the end")
        except EOFError:
            c.close()


def parent():
    global n
    with Listener(where, family, backlog=max(conns or 1, 5), authkey=authkey) as ls:
        proc = subprocess.Popen([sys.executable] + sys.argv + ["--child"])
        payload = b"x" * BULK if shape == "bulk" else None
        cs = [ls.accept() for _ in range(conns or 1)]
        c = cs[0]
        t0, p0, c0 = time.perf_counter(), time.process_time(), proc_cpu(proc.pid)
        if shape == "oneway":
            for i in range(1, n + 1):
                c.send(small(i))
            c.send("end")
            assert c.recv() == n
        elif shape == "bulk":
            for _ in range(n):
                c.send_bytes(payload)
            c.send_bytes(b"")
            assert c.recv() == n
        elif conns:
            n = n // conns * conns
            per = n // conns
            nxt = {}  # connection -> (next seq, last seq)
            for k, c in enumerate(cs):
                c.send(small(k * per + 1))
                nxt[c] = (k * per + 1, (k + 1) * per)
            while nxt:
                for c in wait(list(nxt)):
                    i, last = nxt[c]
                    assert c.recv()["seq"] == i
                    if i < last:
                        c.send(small(i + 1))
                        nxt[c] = (i + 1, last)
                    else:
                        c.send("end")
                        del nxt[c]
        else:
            for i in range(1, n + 1):
                c.send(small(i))
                assert c.recv()["seq"] == i
            c.send("end")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - p0
        child_cpu = proc_cpu(proc.pid) - c0
        for c in cs:
            c.close()
    assert proc.wait() == 0, "the child failed"
    return seconds, cpu, child_cpu


if is_child:
    child()
else:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import benchlib as b
    seconds, cpu, child_cpu = parent()
    extra = [("parent_cpu", "%.2f" % cpu), ("child_cpu", "%.2f" % child_cpu),
             ("cpu_us_per_op", "%.2f" % ((cpu + child_cpu) / n * 1e6)), ("auth", "hmac" if auth else "none")]
    if shape == "bulk":
        extra = [("mib_per_sec", "%.1f" % (n * 16 / seconds)), ("msg_bytes", BULK)] + extra
    b.report(bench, "multiprocessing", n, seconds, None, *extra)
