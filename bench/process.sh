#!/usr/bin/env bash
# The process benchmarks (proc_roundtrip, proc_spawn, proc_pipe): runs every
# implementation of each, curio-lua first, from the repository root, and
# prints each run's name=value lines as one block, blocks separated by a
# blank line. Feed the output to `lua5.4 bench/summary.lua` for tables.
#
#   bench/process.sh [benchmark...]    (default: all three)
#
# Environment: BENCH_SCALE (multiplies every N, and proc_pipe's MiB, e.g.
# 0.1; default 1), BENCH_TIMEOUT (seconds per run, default 300),
# CURIO_PY_SRC (an unpacked dabeaz/curio snapshot for the curio-py peer),
# LUA (default lua5.4), PYTHON (default /usr/bin/python3, else python3).
set -u
if [ -n "${CURIO_PY_SRC:-}" ] && [ -d "$CURIO_PY_SRC" ]; then
  CURIO_PY_SRC=$(cd "$CURIO_PY_SRC" && pwd)  # it may be relative to here
  export CURIO_PY_SRC
fi
cd "$(dirname "$0")/.." || exit 1

scale=${BENCH_SCALE:-1}
limit=${BENCH_TIMEOUT:-300}
lua=${LUA:-lua5.4}
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x /usr/bin/python3 ]; then py=/usr/bin/python3
else py=python3; fi
export PYTHONDONTWRITEBYTECODE=1
# The project's modules first, then Lua's defaults (";;").
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;${LUA_PATH:-;}"
export LUA_CPATH="./build/?.so;${LUA_CPATH:-;}"
# Python curio's process workers are new interpreters: they find the
# snapshot through PYTHONPATH (and through the sys.path handed to them).
curio_py_env=()
if [ -n "${CURIO_PY_SRC:-}" ]; then
  curio_py_env=(env "PYTHONPATH=$CURIO_PY_SRC${PYTHONPATH:+:$PYTHONPATH}")
fi

# benchmark and its default N (proc_pipe: MiB through the pipe)
benches=(proc_roundtrip:200 proc_spawn:200 proc_pipe:100)

first=1
block() {  # print a block, preceded by a blank line unless it is the first
  [ "$first" = 1 ] || echo
  first=0
  printf '%s\n' "$1"
}

# run BENCH IMPL FILE COMMAND...: one program, or a skipped/error block
run() {
  local bench=$1 impl=$2 file=$3 out rc
  shift 3
  if [ ! -f "$file" ]; then
    block "$(printf 'bench=%s\nimpl=%s\nskipped=no program (%s)' "$bench" "$impl" "$file")"
    return
  fi
  if ! command -v "$1" >/dev/null; then
    block "$(printf 'bench=%s\nimpl=%s\nskipped=%s not found' "$bench" "$impl" "$1")"
    return
  fi
  out=$(timeout "$limit" "$@" </dev/null)
  rc=$?
  if [ "$rc" = 0 ] && [ -n "$out" ]; then
    block "$out"
  else
    [ "$rc" = 124 ] && rc="timeout after ${limit}s" || rc="exit status $rc"
    block "$(printf 'bench=%s\nimpl=%s\nerror=%s' "$bench" "$impl" "$rc")"
  fi
}

scaled() { awk -v n="$1" -v s="$scale" 'BEGIN { v = int(n * s); print (v < 2 ? 2 : v) }'; }

wanted() {  # is benchmark $1 selected on the command line?
  local w
  [ "$#" -eq 1 ] && return 0
  for w in "${@:2}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

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
done
