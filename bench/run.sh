#!/usr/bin/env bash
# Runs every implementation of every benchmark, from the repository root, and
# prints each run's name=value lines as one block, blocks separated by a blank
# line. Feed the output to `lua5.4 bench/summary.lua` for tables.
#
#   bench/run.sh [benchmark...]        (default: all of them)
#
# Environment: BENCH_IMPLS (the implementations to run, e.g. "curio-lua
# limit"; default all), BENCH_SCALE (multiplies every N, e.g. 0.1; default 1),
# BENCH_TIMEOUT (seconds per run, default 300), CURIO_PY_SRC (an unpacked
# dabeaz/curio snapshot for the curio-py peer), LUA (default lua5.4),
# PYTHON (default /usr/bin/python3, else python3).
set -u
. "$(dirname "$0")/lib.sh" || exit 1

# benchmark and its default N
benches=(spawn_join:100000 spawn_many:100000 switch:1000000 timeout_after:100000
  sleepers:100000 sleepers_1m:1000000 queue_bounded:1000000
  queue_unbounded:1000000 queue_priority:1000000 lock_handoff:1000000 event_waiters:10000
  taskgroup:100000 thread_roundtrip:10000 thread_parallel:10000 codec:100
  universal_queue:1000000 stream_read:4)

# An entry that runs another benchmark's programs (at its own N), their
# `bench=` lines relabelled with the entry's name.
programs_of() {
  case $1 in
    sleepers_1m) echo sleepers ;;
    *) echo "$1" ;;
  esac
}

# Why an implementation is not run for an entry (nothing: it is run).
left_out() {
  case $1:$2 in
    sleepers_1m:curio-py) echo "not run at 1M (its ready-queue assert is quadratic: hours)" ;;
    sleepers_1m:trio) echo "not run at 1M (about 140 s and 5 GB)" ;;
    codec:curio-lua | codec:cjson | codec:limit) ;;
    codec:*) echo "no codec peer (the codec's peer is lua-cjson)" ;;
    stream_read:curio-lua | stream_read:limit) ;;
    stream_read:*) echo "no peer (it guards curio-lua's joins of many chunks)" ;;
  esac
}

for entry in "${benches[@]}"; do
  b=${entry%%:*}
  wanted "$b" "$@" || continue
  n=$(scaled "${entry#*:}")
  p=$(programs_of "$b")
  from=$p
  run "$b" curio-lua "bench/$p.lua" "$lua" "bench/$p.lua" "$n"
  run "$b" curio-py "bench/peers/curio_$p.py" "$py" "bench/peers/curio_$p.py" "$n"
  run "$b" asyncio "bench/peers/asyncio_$p.py" "$py" "bench/peers/asyncio_$p.py" "$n"
  run "$b" uvloop "bench/peers/asyncio_$p.py" "$py" "bench/peers/asyncio_$p.py" "$n" --uvloop
  run "$b" trio "bench/peers/trio_$p.py" "$py" "bench/peers/trio_$p.py" "$n"
  run "$b" cqueues "bench/peers/cqueues_$p.lua" "$lua" "bench/peers/cqueues_$p.lua" "$n"
  # peers of only some benchmarks, run where they have a program: luv
  # (libuv's threadpool at 64 threads, the size of curio-lua's pool; luv
  # reads it once, at load), lua-cjson, Node.js
  if [ -f "bench/peers/luv_$p.lua" ]; then
    run "$b" luv "bench/peers/luv_$p.lua" \
      env UV_THREADPOOL_SIZE=64 "$lua" "bench/peers/luv_$p.lua" "$n"
  fi
  if [ -f "bench/peers/cjson_$p.lua" ]; then
    run "$b" cjson "bench/peers/cjson_$p.lua" "$lua" "bench/peers/cjson_$p.lua" "$n"
  fi
  if [ -f "bench/peers/node_$p.js" ]; then
    run "$b" node "bench/peers/node_$p.js" node "bench/peers/node_$p.js" "$n"
  fi
  # the limit: the least this work costs here (bench/limits/): a C program
  # for the thread benchmarks, else plain Lua with limitlib (a clock, the
  # codec's deep copy)
  case $p in
    thread_roundtrip | thread_parallel | universal_queue) run_limit "$b" "$p" "$n" ;;
    *)
      if build_limit limitlib module >/dev/null; then
        run "$b" limit bench/limits/plain.lua env "LUA_CPATH=bench/limits/build/?.so;;" \
          "$lua" bench/limits/plain.lua "$p" "$n"
      else
        block "$(printf 'bench=%s\nimpl=limit\nerror=build of bench/limits/limitlib.c failed' "$b")"
      fi ;;
  esac
done
