#!/usr/bin/env bash
# HTTP keep-alive throughput: wrk (one thread, 50 connections, keep-alive)
# asking GET / of examples/http_server.lua (impl curio-lua), of
# bench/peers/node_http_server.js (impl node, Node's http module, the same
# reply) and of bench/limits/c_http_server.c (impl limit: C, epoll, the
# same reply bytes to every request, no parsing; built here with cc). Each server is pinned to CPU 0 and wrk to CPU 1 (taskset), on
# 127.0.0.1 and a free port; a warm-up run comes before the timed one.
# Prints one name=value block per implementation, blocks separated by a
# blank line, as bench/run.sh does:
#
#   bash bench/http.sh | lua5.4 bench/summary.lua
#
# Environment: HTTP_SECONDS (timed seconds, default 5), HTTP_WARMUP (warm-up
# seconds, default 1; 0: none), HTTP_CONNS (default 50), LUA (default
# lua5.4), NODE (default node), CC (default cc).
set -u
cd "$(dirname "$0")/.." || exit 1

seconds=${HTTP_SECONDS:-5}
warmup=${HTTP_WARMUP:-1}
conns=${HTTP_CONNS:-50}
lua=${LUA:-lua5.4}
node=${NODE:-node}
bench=http_wrk_c$conns
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;${LUA_PATH:-;}"
export LUA_CPATH="./build/?.so;${LUA_CPATH:-;}"

server_pid=
stop_server() {  # by PID, waiting (bounded) until it is gone
  [ -n "$server_pid" ] || return
  kill "$server_pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

first=1
block() {  # print a block, preceded by a blank line unless it is the first
  [ "$first" = 1 ] || echo
  first=0
  printf '%s\n' "$1"
}

skipped() { block "$(printf 'bench=%s\nimpl=%s\nskipped=%s' "$bench" "$1" "$2")"; }
failed() { block "$(printf 'bench=%s\nimpl=%s\nerror=%s' "$bench" "$1" "$2")"; }

# Does the server on port $1 answer GET / with the hello body?
# shellcheck disable=SC2016  # $0 expands in the inner bash
answers() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" &&
    printf "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" >&3 && cat <&3' "$1" \
    2>/dev/null | grep -q '^Hello, world!$'
}

# start_server COMMAND...: runs COMMAND HOST PORT on CPU 0 with a random
# port, retried on another when it does not come up; sets $port and
# $server_pid. The server's life is bounded by `timeout`.
start_server() {
  local life=$((seconds + warmup + 120))
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    timeout "$life" taskset -c 0 "$@" 127.0.0.1 "$port" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      if answers "$port"; then return 0; fi
      sleep 0.05
    done
    stop_server
  done
  return 1
}

# CPU seconds (user + system, all threads) used so far by the server: the
# child of `timeout`, which taskset became; "-" when /proc does not tell.
server_cpu() {
  local child
  child=$(awk '{ print $1 }' "/proc/$server_pid/task/$server_pid/children" 2>/dev/null)
  awk -v hz="$hz" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$child/stat" 2>/dev/null ||
    echo -
}

# CPU seconds (user, nice, system) used so far by the whole machine.
machine_cpu() {
  awk -v hz="$hz" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4) / hz }' /proc/stat
}
hz=$(getconf CLK_TCK)

# wrk's latency ("612.00us", "1.23ms", "1.01s", "2.00m") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    m = (u == "us") ? 1 : (u == "ms") ? 1e3 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : (u == "h") ? 3.6e9 : -1
    if (m < 0) print "-"; else printf "%d\n", n * m + 0.5 }'
}

# run IMPL COMMAND...: one implementation's block.
run() {
  local impl=$1 out requests secs rps p50 p99 errors s0 s1 m0 m1
  local server_cpu client_cpu other_cpu cpu_us
  shift
  if ! command -v "$1" >/dev/null; then skipped "$impl" "$1 not found"; return; fi
  if ! start_server "$@"; then failed "$impl" "server did not start"; return; fi
  local url="http://127.0.0.1:$port/"
  if [ "$warmup" != 0 ]; then
    taskset -c 1 wrk -t1 -c"$conns" -d"${warmup}s" "$url" >/dev/null 2>&1
  fi
  # the timed run, with the CPU seconds of the server, of wrk (bash's
  # `time`, printed last) and of the whole machine around it
  s0=$(server_cpu) m0=$(machine_cpu)
  out=$( { TIMEFORMAT='wrk_cpu %U %S'; time taskset -c 1 wrk -t1 -c"$conns" -d"${seconds}s" \
    --latency "$url" 2>&1; } 2>&1 )
  s1=$(server_cpu) m1=$(machine_cpu)
  stop_server
  requests=$(printf '%s\n' "$out" | awk '/ requests in / { print $1 }')
  secs=$(printf '%s\n' "$out" | awk '/ requests in / { s = $4; sub(/s,$/, "", s); print s }')
  rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { printf "%d\n", $2 + 0.5 }')
  p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
  # socket errors (connect, read, write, timeout) and non-2xx/3xx replies
  errors=$(printf '%s\n' "$out" | awk '
    /Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { e += $NF }
    END { print e + 0 }')
  if [ -z "$requests" ] || [ -z "$rps" ]; then
    failed "$impl" "no wrk figures: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
    return
  fi
  # server_cpu, client_cpu: CPU seconds per second of the server and of
  # wrk; other_cpu: the rest of the machine's (other processes competing:
  # a run with more than a few hundredths is unreliable); the server's
  # CPU microseconds per request.
  local cpu
  cpu=$(printf '%s\n' "$out" | awk -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" \
    -v t="$secs" -v n="$requests" '
    /^wrk_cpu / { w = $2 + $3 }
    END {
      if (s0 == "-" || s1 == "-") { print "- - - -"; exit }
      o = (m1 - m0) - (s1 - s0) - w; if (o < 0) o = 0
      printf "%.2f %.2f %.2f %.1f\n", (s1 - s0) / t, w / t, o / t, (s1 - s0) * 1e6 / n }')
  read -r server_cpu client_cpu other_cpu cpu_us <<< "$cpu"
  block "$(printf '%s\n' "bench=$bench" "impl=$impl" "conns=$conns" "seconds=$secs" \
    "requests=$requests" "ops_per_sec=$rps" "p50_us=$(to_us "$p50")" "p99_us=$(to_us "$p99")" \
    "errors=$errors" "server_cpu=$server_cpu" "client_cpu=$client_cpu" "other_cpu=$other_cpu" \
    "server_cpu_us_per_req=$cpu_us")"
}

for tool in wrk taskset; do
  if ! command -v "$tool" >/dev/null; then
    skipped limit "$tool not found"
    skipped curio-lua "$tool not found"
    skipped node "$tool not found"
    exit 0
  fi
done
if mkdir -p bench/limits/build && "${CC:-cc}" -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 \
  -o bench/limits/build/c_http_server bench/limits/c_http_server.c; then
  run limit bench/limits/build/c_http_server
else
  failed limit "build of bench/limits/c_http_server.c failed"
fi
run curio-lua "$lua" examples/http_server.lua
run node "$node" bench/peers/node_http_server.js
