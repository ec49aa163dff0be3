"""proc_pipe on asyncio (uvloop with --uvloop): one
`asyncio.create_subprocess_exec("head", "-c", BYTES, "/dev/zero",
stdout=PIPE)` and `await p.communicate()` for MIB MiB (first argument,
default 100); the whole output comes back as one bytes object (the
StreamReader's buffer), whose length is checked. n=1, ops_per_sec =
1/seconds; extra lines: bytes, mib, mib_per_sec."""
import asyncio
import benchlib as b

impl, run = b.asyncio_impl("proc_pipe")
MIB = b.arg_n(100)
BYTES = MIB * 1048576


async def main():
    t0 = b.now()
    p = await asyncio.create_subprocess_exec(
        "head", "-c", str(BYTES), "/dev/zero", stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    dt = b.now() - t0
    assert p.returncode == 0 and len(out) == BYTES, "short output"
    return dt


seconds = run(main())
b.emit(("bench", "proc_pipe"), ("impl", impl), ("n", 1), ("seconds", seconds),
       ("ops_per_sec", "%.3f" % (1 / seconds)), ("bytes", BYTES), ("mib", MIB),
       ("mib_per_sec", "%.1f" % (MIB / seconds)))
