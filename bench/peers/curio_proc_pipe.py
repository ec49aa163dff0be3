"""proc_pipe on Python curio: one `await subprocess.check_output([...])` of
MIB MiB (first argument, default 100) from `head -c BYTES /dev/zero`; the
whole output comes back as one bytes object (curio's FileStream.readall
joins the chunks), whose length is checked. n=1, ops_per_sec = 1/seconds;
extra lines: bytes, mib, mib_per_sec. The module is curio.subprocess, or
the snapshot's examples/curio_subprocess.py where curio moved it (see
curio_proc_spawn.py)."""
import benchlib as b


def import_subprocess(bench):
    """curio.subprocess, else the snapshot's examples/curio_subprocess.py
    (where curio moved it), else skip."""
    import importlib.util
    import os
    try:
        import curio.subprocess
        return curio.subprocess
    except ImportError:
        pass
    path = os.path.join(os.environ.get("CURIO_PY_SRC", ""), "examples",
                        "curio_subprocess.py")
    if not os.path.isfile(path):
        b.skip(bench, "curio-py", "no curio.subprocess nor examples/curio_subprocess.py")
    spec = importlib.util.spec_from_file_location("curio_subprocess", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


curio = b.import_curio("proc_pipe")
subprocess = import_subprocess("proc_pipe")
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
