"""proc_spawn on asyncio (uvloop with --uvloop): N sequential
`await asyncio.create_subprocess_exec("true")` + `await p.wait()`, each
checked for returncode 0, after one untimed warm-up run. The child inherits
stdin, stdout and stderr. asyncio (Python 3.11) learns of the exit through
its default child watcher (a thread per child, blocked in waitpid); uvloop
through libuv's SIGCHLD handling."""
import asyncio
import benchlib as b

impl, run = b.asyncio_impl("proc_spawn")
N = b.arg_n(200)


async def one():
    p = await asyncio.create_subprocess_exec("true")
    return await p.wait()


async def main():
    assert await one() == 0  # warm-up
    t0 = b.now()
    for _ in range(N):
        assert await one() == 0
    return b.now() - t0


b.report("proc_spawn", impl, N, run(main()))
