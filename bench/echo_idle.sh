#!/usr/bin/env bash
# Memory per idle connection of each echo server: starts the server (the
# same ones as bench/echo.sh) on 127.0.0.1 pinned to CPU 0, reads its VmRSS
# from /proc/PID/status, then opens 10,000 connections with
# bench/echo/idle_clients.c (pinned to CPU 1; one 16-byte echo on each, so
# that every connection's task and buffers are set up), holds them idle,
# reads VmRSS again after a second, and prints one block per implementation:
#
#   bench=echo_idle_10k impl=... conns=10000 rss_kb=... rss_base_kb=...
#   rss_per_conn_bytes=... setup_seconds=...
#
# (one name=value a line; rss_per_conn_bytes = (rss_kb - rss_base_kb) * 1024
# / conns; setup_seconds: the clients' time to open and echo on them all).
#
#   bench/echo_idle.sh [impl...] | lua5.4 bench/summary.lua
#
# Implementations (default: all): limit (the C server, echo/c_echo_server.c;
# also named c-epoll) curio-lua curio-lua-stream luv cqueues curio-py
# asyncio uvloop node, and limit-coroutine: no server, a bare Lua coroutine
# suspended per connection (bench/limits/plain.lua echo_idle), what a
# coroutine per connection costs at the least. Both sides need more than 10,000
# descriptors: the soft `ulimit -n` is raised to what is needed, which must
# not exceed the hard limit (else every implementation is skipped).
#
# Environment: ECHO_IDLE_CONNS (default 10000), ECHO_START_TIMEOUT (seconds
# for a server to listen, default 15), CURIO_PY_SRC, LUA, PYTHON, CC (as
# for bench/echo.sh).
set -u
if [ -n "${CURIO_PY_SRC:-}" ] && [ -d "$CURIO_PY_SRC" ]; then
  CURIO_PY_SRC=$(cd "$CURIO_PY_SRC" && pwd)  # it may be relative to here
  export CURIO_PY_SRC
fi
cd "$(dirname "$0")/.." || exit 1
. bench/echo/common.sh
extra_impls=(limit-coroutine)

n=${ECHO_IDLE_CONNS:-10000}
if [ "$n" = 10000 ]; then bench=echo_idle_10k; else bench=echo_idle_$n; fi
need=$((n + 100))  # the connections, plus the programs' own descriptors

check_names "$@" || exit 2
build_c idle_clients || exit 1
build_c c_echo_server || exit 1

nofile_why=
soft=$(ulimit -Sn) hard=$(ulimit -Hn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$need" ]; then
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
    ulimit -Sn "$need" || nofile_why="could not raise ulimit -n to $need"
  else
    nofile_why="ulimit -n hard limit $hard is below the $need descriptors needed"
  fi
fi

tmp=$(mktemp -d) || exit 1
client_pid=
stop_clients() {
  local i
  [ -n "$client_pid" ] || return 0
  kill -TERM "$client_pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    kill -0 "$client_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$client_pid" 2>/dev/null
  wait "$client_pid" 2>/dev/null
  client_pid=
}
cleanup() {
  stop_clients
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() {  # VmRSS of process $1 in kB, or nothing
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

result() {  # result IMPL NAME VALUE: a block with one outcome line
  block "$(printf 'bench=%s\nimpl=%s\nconns=%s\n%s=%s' "$bench" "$1" "$n" "$2" "$3")"
}

i=0
for impl in "${echo_impls[@]}"; do
  i=$((i + 1))
  selected "$impl" "$@" || continue
  if [ -n "$nofile_why" ]; then result "$impl" skipped "$nofile_why"; continue; fi
  server_cmd "$impl" 0
  if [ -n "$why" ]; then result "$impl" skipped "$why"; continue; fi
  if ! port=$(free_port $((25200 + i))); then
    result "$impl" error "no free port from $((25200 + i))"
    continue
  fi
  server_cmd "$impl" "$port"
  if ! start_server "$port"; then result "$impl" error "$why"; continue; fi
  sleep 0.5
  base=$(rss_kb "$server_pid")

  out=$tmp/clients.out
  : > "$out"
  "${pin_client[@]}" "$build/idle_clients" "$host" "$port" "$n" 300 > "$out" &
  client_pid=$!
  why=
  for ((t = 0; t < 1500; t++)); do  # at most 150 s (the clients give up at 120)
    grep -q '^ready' "$out" && break
    if ! kill -0 "$client_pid" 2>/dev/null; then why="idle_clients failed"; break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then why="server exited"; break; fi
    sleep 0.1
  done
  grep -q '^ready' "$out" || why=${why:-"connections not set up in time"}
  if [ -z "$why" ]; then
    sleep 1  # let the server settle
    rss=$(rss_kb "$server_pid")
    kill -0 "$server_pid" 2>/dev/null && [ -n "$rss" ] && [ -n "$base" ] || why="server exited"
  fi
  if [ -z "$why" ]; then
    setup=$(sed -n 's/^ready .*setup_seconds=\([0-9.]*\).*/\1/p' "$out")
    block "$(printf 'bench=%s\nimpl=%s\nconns=%s\nrss_kb=%s\nrss_base_kb=%s\nrss_per_conn_bytes=%s\nsetup_seconds=%s' \
      "$bench" "$impl" "$n" "$rss" "$base" "$(( (rss - base) * 1024 / n ))" "$setup")"
  else
    result "$impl" error "$why"
  fi
  stop_clients  # the clients close first: the server sees 10,000 ends of stream
  stop_server
done

# no server: a bare suspended coroutine per connection
if selected limit-coroutine "$@"; then
  if out=$("$lua" bench/limits/plain.lua echo_idle "$n") && [ -n "$out" ]; then
    block "$out"
  else
    result limit-coroutine error "bench/limits/plain.lua echo_idle failed"
  fi
fi
