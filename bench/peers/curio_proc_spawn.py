"""proc_spawn on Python curio: N sequential `await subprocess.run(["true"])`,
each checked for returncode 0, after one untimed warm-up run. The child
inherits stdin, stdout and stderr. The curio snapshot no longer ships
curio.subprocess (removed in April 2024, "old code found in
examples/curio_subprocess.py"): the module is loaded from the snapshot's
examples/curio_subprocess.py when curio.subprocess is absent. Its wait()
is `run_in_thread(popen.wait)`."""
import benchlib as b


curio = b.import_curio("proc_spawn")
subprocess = b.import_curio_subprocess("proc_spawn")
N = b.arg_n(200)


async def main():
    assert (await subprocess.run(["true"])).returncode == 0  # warm-up
    t0 = b.now()
    for _ in range(N):
        assert (await subprocess.run(["true"])).returncode == 0
    return b.now() - t0


b.report("proc_spawn", "curio-py", N, curio.run(main))
