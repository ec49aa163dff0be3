#!/usr/bin/env bash
# Channel benchmark: messages between two processes, each implementation's
# program listening, accepting and timing in one process and connecting
# from a child it starts itself. Shapes (bench=channel_<shape>_<family>):
#
#   oneway    N small tables one way, then an end marker and the count back
#   roundtrip N small tables each echoed back, one in flight
#   many50    50 connections, one task (or handler) on each side of each,
#             N round trips in all, one in flight per connection
#   bulk      N messages of 16 MiB one way (bytes), then the count back
#
# each over TCP loopback (127.0.0.1, a free port found at run time) and
# over a unix socket (in a temporary directory). The small table is the
# same everywhere: {seq = i, kind = "job", name = "alpha", x = 1.5,
# y = -2.25, count = 42}.
#
#   bench/channel.sh [impl...] | lua5.4 bench/summary.lua
#
# Implementations (default: all): curio-lua (bench/channel/curio_channel.lua:
# curio.Channel, with an authkey), curio-py (Python curio's Channel, pickle,
# with an authkey), multiprocessing (multiprocessing.connection Listener and
# Client, pickle, with an authkey), node and node-advanced (child_process
# IPC, process.send, serialization 'json' and 'advanced'; a unix socketpair
# with no authentication: TCP and many50 points are skipped=; node's bulk
# under json sends an eighth of N, about 15 MiB/s), limit
# (bench/channel/limit.c: frames of 92 bytes, or 16 MiB for bulk, with a
# 4-byte header copied by blocking read and write, no serialization). A
# missing peer is printed as skipped=..., a failed run as error=....
#
# The whole set is run CHANNEL_RUNS times (default 3; 1 with BENCH_SCALE
# below 1), each run starting
# one implementation further down the list, every point of every
# implementation measured in the same minutes; each point's best run is
# printed (bench/pick.lua best: runs= and every run's ops_per_sec in
# ops_per_sec_runs= added).
#
# Environment: CHANNEL_RUNS, CHANNEL_SHAPES (default "oneway roundtrip
# many50 bulk"), CHANNEL_FAMILIES (default "tcp unix"), BENCH_SCALE
# (multiplies every N; default 1), BENCH_TIMEOUT (seconds per run of a
# program, default 300), CHANNEL_RAW (a file to which every run's blocks
# are appended), CURIO_PY_SRC (an unpacked dabeaz/curio snapshot for
# curio-py), LUA, PYTHON, CC.
set -u
. "$(dirname "$0")/lib.sh" || exit 1
# free_port, selected, check_names, block (the same as lib.sh's)
. bench/echo/common.sh

runs=${CHANNEL_RUNS:-3}
# a quick look (BENCH_SCALE below 1): one run unless CHANNEL_RUNS says
if [ -z "${CHANNEL_RUNS:-}" ] && awk -v s="$scale" 'BEGIN { exit !(s < 1) }'; then runs=1; fi
shapes=${CHANNEL_SHAPES:-oneway roundtrip many50 bulk}
families=${CHANNEL_FAMILIES:-tcp unix}
cbuild=bench/channel/build

channel_impls=(curio-lua curio-py multiprocessing node node-advanced limit)
echo_impls=("${channel_impls[@]}") # the names check_names accepts
check_names "$@" || exit 2

# shellcheck disable=SC2086  # CFLAGS: several flags
mkdir -p "$cbuild" && "$cc" -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE ${CFLAGS:--O2} \
  -o "$cbuild/limit" bench/channel/limit.c || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

n_of() { # the default N of a shape, scaled
  case $1 in
    oneway) scaled 200000 ;;
    roundtrip | many*) scaled 20000 ;;
    bulk) scaled 64 ;;
  esac
}

# the command of IMPL at SHAPE, ADDRESS, N (run's FILE first)
impl_cmd() {
  local impl=$1 s=$2 a=$3 n=$4
  case $impl in
    curio-lua) cmd=(bench/channel/curio_channel.lua "$lua" bench/channel/curio_channel.lua "$s" "$a" "$n") ;;
    curio-py) cmd=(bench/peers/curio_channel.py "$py" bench/peers/curio_channel.py "$s" "$a" "$n") ;;
    multiprocessing) cmd=(bench/peers/mp_channel.py "$py" bench/peers/mp_channel.py "$s" "$a" "$n") ;;
    node) # json carries 16 MiB at about 15 MiB/s: an eighth of the messages
      [ "$s" = bulk ] && n=$(((n + 7) / 8))
      cmd=(bench/peers/node_channel.js node bench/peers/node_channel.js "$s" "$a" "$n") ;;
    node-advanced) cmd=(bench/peers/node_channel.js node bench/peers/node_channel.js "$s" "$a" "$n" --advanced) ;;
    limit) cmd=("$cbuild/limit" "$cbuild/limit" "$s" "$a" "$n") ;;
  esac
}

left_out() { :; } # each program prints its own skipped= (node: TCP, many)

selected_impls=()
for impl in "${channel_impls[@]}"; do
  selected "$impl" "$@" && selected_impls+=("$impl")
done
k=${#selected_impls[@]} seq=0
for ((r = 0; r < runs; r++)); do
  for s in $shapes; do
    for f in $families; do
      n=$(n_of "$s")
      for ((j = 0; j < k; j++)); do
        impl=${selected_impls[$(((r + j) % k))]}
        seq=$((seq + 1))
        if [ "$f" = unix ]; then
          a=$tmp/ch$seq.sock
        elif ! a=127.0.0.1:$(free_port 25600); then
          block "$(printf 'bench=channel_%s_tcp\nimpl=%s\nerror=no free port from 25600' "$s" "$impl")"
          continue
        fi
        impl_cmd "$impl" "$s" "$a" "$n"
        run "channel_${s}_$f" "$impl" "${cmd[@]}"
      done
    done
  done
done >"$tmp/raw.txt"
[ -n "${CHANNEL_RAW:-}" ] && cat "$tmp/raw.txt" >>"$CHANNEL_RAW"
"$lua" bench/pick.lua best <"$tmp/raw.txt"
