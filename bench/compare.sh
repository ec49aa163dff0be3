#!/usr/bin/env bash
# Before/after: runs the curio-lua programs of bench/run.sh's kernel, sync
# and queue benchmarks from two checkouts, alternately (old, new, old, new,
# ...) so that the machine's noise falls on both alike, and prints one block
# per benchmark with each side's median ops_per_sec and their ratio:
#
#   bench/compare.sh OLD_ROOT [benchmark...]
#
# OLD_ROOT is another checkout of this repository, built (`make`) there; the
# new side is this checkout, built. Environment: COMPARE_RUNS (runs per side,
# default 7), BENCH_SCALE (multiplies every N, default 1), LUA (lua5.4).
set -u
if [ $# -lt 1 ] || [ ! -f "$1/build/curio/core.so" ]; then
  echo "usage: bench/compare.sh OLD_ROOT [benchmark...] (OLD_ROOT built with make)" >&2
  exit 2
fi
old=$(cd "$1" && pwd)
shift
cd "$(dirname "$0")/.." || exit 1
new=$(pwd)
lua=${LUA:-lua5.4}
runs=${COMPARE_RUNS:-7}
scale=${BENCH_SCALE:-1}
benches=(spawn_join:100000 spawn_many:100000 switch:1000000 timeout_after:100000
  sleepers:100000 queue_bounded:1000000 queue_unbounded:1000000
  queue_priority:1000000 lock_handoff:1000000 event_waiters:10000
  taskgroup:100000 thread_roundtrip:10000 universal_queue:1000000)

# one run of ROOT's bench/NAME.lua at N: its ops_per_sec
rate() {
  (cd "$1" && LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/?.so;;" \
     timeout 300 "$lua" "bench/$2.lua" "$3" </dev/null 2>/dev/null) |
    sed -n 's/^ops_per_sec=//p'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

first=1
for entry in "${benches[@]}"; do
  b=${entry%%:*}
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$b"; then continue; fi
  n=$(awk -v n="${entry#*:}" -v s="$scale" 'BEGIN { v = int(n * s); print v < 1 ? 1 : v }')
  [ -f "$old/bench/$b.lua" ] && [ -f "bench/$b.lua" ] || continue
  o=(); w=()
  for _ in $(seq "$runs"); do
    o+=("$(rate "$old" "$b" "$n")")
    w+=("$(rate "$new" "$b" "$n")")
  done
  mo=$(printf '%s\n' "${o[@]}" | median)
  mn=$(printf '%s\n' "${w[@]}" | median)
  [ "$first" = 1 ] || echo
  first=0
  printf 'bench=%s\nn=%s\nruns=%s\nold_ops_per_sec=%s\nnew_ops_per_sec=%s\n' "$b" "$n" "$runs" "$mo" "$mn"
  awk -v o="$mo" -v w="$mn" 'BEGIN { if (o > 0 && w > 0) printf "new_over_old=%.3f\n", w / o }'
done
