#!/usr/bin/env bash
# The process benchmarks (proc_roundtrip, proc_spawn, proc_pipe): runs every
# implementation of each, curio-lua first, from the repository root, and
# prints each run's name=value lines as one block, blocks separated by a
# blank line. Feed the output to `lua5.4 bench/summary.lua` for tables.
#
#   bench/process.sh [benchmark...]    (default: all three)
#
# Environment: BENCH_IMPLS (the implementations to run, e.g. "curio-lua
# limit"; default all), BENCH_SCALE (multiplies every N, and proc_pipe's MiB, e.g.
# 0.1; default 1), BENCH_TIMEOUT (seconds per run, default 300),
# CURIO_PY_SRC (an unpacked dabeaz/curio snapshot for the curio-py peer),
# LUA (default lua5.4), PYTHON (default /usr/bin/python3, else python3).
set -u
. "$(dirname "$0")/lib.sh" || exit 1

# Python curio's process workers are new interpreters: they find the
# snapshot through PYTHONPATH (and through the sys.path handed to them).
curio_py_env=()
if [ -n "${CURIO_PY_SRC:-}" ]; then
  curio_py_env=(env "PYTHONPATH=$CURIO_PY_SRC${PYTHONPATH:+:$PYTHONPATH}")
fi

# benchmark and its default N (proc_pipe: MiB through the pipe)
benches=(proc_roundtrip:200 proc_spawn:200 proc_pipe:100)

left_out() { :; }  # every implementation runs where it has a program

for entry in "${benches[@]}"; do
  b=${entry%%:*}
  wanted "$b" "$@" || continue
  n=$(scaled "${entry#*:}")
  run "$b" curio-lua "bench/$b.lua" "$lua" "bench/$b.lua" "$n"
  run "$b" curio-py "bench/peers/curio_$b.py" \
    "${curio_py_env[@]}" "$py" "bench/peers/curio_$b.py" "$n"
  run "$b" asyncio "bench/peers/asyncio_$b.py" "$py" "bench/peers/asyncio_$b.py" "$n"
  run "$b" uvloop "bench/peers/asyncio_$b.py" "$py" "bench/peers/asyncio_$b.py" "$n" --uvloop
  # peers of only some of the three, run where they have a program
  if [ -f "bench/peers/luv_$b.lua" ]; then
    run "$b" luv "bench/peers/luv_$b.lua" "$lua" "bench/peers/luv_$b.lua" "$n"
  fi
  if [ -f "bench/peers/node_$b.js" ]; then
    run "$b" node "bench/peers/node_$b.js" node "bench/peers/node_$b.js" "$n"
  fi
  # the limit: the least this work costs here, a C program (bench/limits/)
  run_limit "$b" "$b" "$n"
done
