"""Helpers shared by the Python peer benchmarks (not a benchmark itself).

A benchmark prints only `name=value` lines.
"""
import os
import sys
import time

now = time.perf_counter


def arg_n(default):
    """N from the first non-option command-line argument, else default."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    return max(1, int(float(args[0]))) if args else default


def emit(*pairs):
    for k, v in pairs:
        print(f"{k}={v:.6f}" if isinstance(v, float) else f"{k}={v}")


def report(bench, impl, n, seconds, ops=None, *extra):
    emit(("bench", bench), ("impl", impl), ("n", n), ("seconds", seconds),
         ("ops_per_sec", "%.0f" % ((n if ops is None else ops) / seconds)),
         *extra)


def skip(bench, impl, why):
    emit(("bench", bench), ("impl", impl), ("skipped", why))
    sys.exit(0)


def peak_rss_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return "unknown"


def import_curio(bench):
    """Python curio from the snapshot named by CURIO_PY_SRC, or skip."""
    src = os.environ.get("CURIO_PY_SRC")
    if src:
        sys.path.insert(0, src)
        try:
            import curio
            return curio
        except ImportError:
            pass
    skip(bench, "curio-py", "curio not found (set CURIO_PY_SRC)")


def import_trio(bench):
    try:
        import trio
        return trio
    except ImportError:
        skip(bench, "trio", "trio not installed (python3-trio)")


def asyncio_impl(bench):
    """(impl name, run function): plain asyncio, or uvloop with --uvloop."""
    import asyncio
    if "--uvloop" not in sys.argv:
        return "asyncio", asyncio.run
    try:
        import uvloop
    except ImportError:
        skip(bench, "uvloop", "uvloop not installed (python3-uvloop)")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop", asyncio.run


def import_curio_subprocess(bench):
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
        skip(bench, "curio-py", "no curio.subprocess nor examples/curio_subprocess.py")
    spec = importlib.util.spec_from_file_location("curio_subprocess", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
