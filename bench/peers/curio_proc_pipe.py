"""proc_pipe on Python curio: one `await subprocess.check_output([...])` of
MIB MiB (first argument, default 100) from `head -c BYTES /dev/zero`; the
whole output comes back as one bytes object (curio's FileStream.readall
joins the chunks), whose length is checked. n=1, ops_per_sec = 1/seconds;
extra lines: bytes, mib, mib_per_sec. The module is curio.subprocess, or
the snapshot's examples/curio_subprocess.py where curio moved it (see
curio_proc_spawn.py)."""
import benchlib as b


curio = b.import_curio("proc_pipe")
subprocess = b.import_curio_subprocess("proc_pipe")
MIB = b.arg_n(100)
BYTES = MIB * 1048576


async def main():
    t0 = b.now()
    out = await subprocess.check_output(["head", "-c", str(BYTES), "/dev/zero"])
    dt = b.now() - t0
    assert len(out) == BYTES, "short output"
    return dt


seconds = curio.run(main)
b.emit(("bench", "proc_pipe"), ("impl", "curio-py"), ("n", 1), ("seconds", seconds),
       ("ops_per_sec", "%.3f" % (1 / seconds)), ("bytes", BYTES), ("mib", MIB),
       ("mib_per_sec", "%.1f" % (MIB / seconds)))
