#!/usr/bin/env bash
# Echo-server benchmark: for each implementation, starts its echo server on
# 127.0.0.1 pinned to CPU 0, then runs the C load generator
# (bench/echo/loadgen.c) pinned to CPU 1 at each point: 1, 50 and 500
# connections, each with one message of 64 or 16384 bytes in flight (send,
# wait for the whole echo, check it, send the next). Prints each point's
# name=value lines as one block (bench=echo_<conns>x<bytes>), blocks
# separated by a blank line, as bench/run.sh does:
#
#   bench/echo.sh [impl...] | lua5.4 bench/summary.lua
#
# Implementations (default: all): limit (the C server, echo/c_echo_server.c;
# also named c-epoll) curio-lua curio-lua-stream luv cqueues curio-py
# asyncio uvloop node. One that cannot run here is printed
# as skipped=..., a failed point as error=....
#
# Environment: ECHO_SECONDS (measured seconds per point, default 3),
# ECHO_WARMUP (seconds of warm-up before each, default 0.5), ECHO_CONNS
# (default "1 50 500"), ECHO_SIZES (default "64 16384"), ECHO_START_TIMEOUT
# (seconds for a server to listen, default 15), CURIO_PY_SRC (an unpacked
# dabeaz/curio snapshot for curio-py), LUA (default lua5.4), PYTHON (default
# /usr/bin/python3, else python3), CC (default cc).
set -u
if [ -n "${CURIO_PY_SRC:-}" ] && [ -d "$CURIO_PY_SRC" ]; then
  CURIO_PY_SRC=$(cd "$CURIO_PY_SRC" && pwd)  # it may be relative to here
  export CURIO_PY_SRC
fi
cd "$(dirname "$0")/.." || exit 1
. bench/echo/common.sh

secs=${ECHO_SECONDS:-3}
conns_list=${ECHO_CONNS:-1 50 500}
sizes_list=${ECHO_SIZES:-64 16384}
# a point's whole run: setup (at most 30 s), warm-up, measurement, drain
# (at most 5 s), plus slack
limit=$(awk -v s="$secs" -v w="${ECHO_WARMUP:-0.5}" 'BEGIN { printf "%d", s + w + 60 }')

check_names "$@" || exit 2
build_c loadgen || exit 1
build_c c_echo_server || exit 1

trap stop_server EXIT
trap 'exit 130' INT TERM

# every_point IMPL NAME VALUE: one block per point, e.g. skipped=why
every_point() {
  local c s
  for c in $conns_list; do
    for s in $sizes_list; do
      block "$(printf 'bench=echo_%sx%s\nimpl=%s\n%s=%s' "$c" "$s" "$1" "$2" "$3")"
    done
  done
}

i=0
for impl in "${echo_impls[@]}"; do
  i=$((i + 1))
  selected "$impl" "$@" || continue
  server_cmd "$impl" 0
  if [ -n "$why" ]; then
    every_point "$impl" skipped "$why"
    continue
  fi
  if ! port=$(free_port $((25100 + i))); then
    every_point "$impl" error "no free port from $((25100 + i))"
    continue
  fi
  server_cmd "$impl" "$port"
  if ! start_server "$port"; then
    every_point "$impl" error "$why"
    continue
  fi
  for c in $conns_list; do
    for s in $sizes_list; do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        block "$(printf 'bench=echo_%sx%s\nimpl=%s\nerror=server exited' "$c" "$s" "$impl")"
        continue
      fi
      out=$(ECHO_SERVER_PID=$server_pid timeout "$limit" "${pin_client[@]}" \
        "$build/loadgen" "$host" "$port" "$c" "$s" "$secs" "$impl")
      rc=$?
      if [ "$rc" = 0 ] && [ -n "$out" ]; then
        block "$out"
      else
        [ "$rc" = 124 ] && rc="timeout after ${limit}s" || rc="loadgen exit status $rc"
        [ -n "$out" ] || out=$(printf 'bench=echo_%sx%s\nimpl=%s' "$c" "$s" "$impl")
        block "$(printf '%s\nerror=%s' "$out" "$rc")"
      fi
    done
  done
  stop_server
done
