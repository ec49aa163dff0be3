#!/usr/bin/env bash
# make soak: the soak test. Starts tests/soak/soak_server.lua (the stream
# echo server, the HTTP example, the TLS echo server, a raising echo
# server, the server-side faults) and runs the C load generator
# (tests/soak/soak_load.c: 1,000 connections on each server, the
# client-side faults, every byte checked) against it for SOAK_SECONDS
# (default 300), on the fixed seed SOAK_SEED (default 1). Prints one block
# of name=value lines (bench=soak), then a summary in words; the exit
# status is 0 only when every check passed.
#
# Environment: SOAK_SECONDS, SOAK_SEED, SOAK_CONNS (connections per
# server, default 1000), BUILD (default build), LUA (default lua5.4).
set -u
cd "$(dirname "$0")/../.." || exit 2

seconds=${SOAK_SECONDS:-300}
seed=${SOAK_SEED:-1}
conns=${SOAK_CONNS:-1000}
raise_conns=100
stuck=200
build=${BUILD:-build}
lua=${LUA:-lua5.4}
load=$build/bin/soak_load
if [ ! -x "$load" ]; then echo "soak: $load is missing (make soak builds it)" >&2; exit 2; fi
if ! command -v openssl >/dev/null || ! command -v prlimit >/dev/null; then
  echo "soak: needs the openssl and prlimit programs (tools/deps.sh installs them)" >&2
  exit 2
fi

# Descriptors: each side needs one per connection, and some. The soft
# limit goes up to the hard one (both programs inherit it; soak_load
# raises its own too); a hard limit too low scales the run down, loudly.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || ulimit -n "$hard"
need=$((3 * conns + raise_conns + stuck + 256))
scaled=0
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  conns=$(( (hard - raise_conns - stuck - 256) / 3 ))
  scaled=1
  echo "soak: NOTE: the hard descriptor limit is $hard, below the $need this soak needs;" \
    "scaled down to $conns connections per server (raise the limit: ulimit -Hn)" >&2
  if [ "$conns" -lt 10 ]; then echo "soak: too few descriptors to run" >&2; exit 2; fi
fi

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The TLS server's certificate, made for this run (nothing private is kept).
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
     -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 -subj /CN=localhost >/dev/null 2>&1; then
  echo "soak: openssl could not make a certificate" >&2
  exit 2
fi

LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH="./$build/?.so;;" \
  "$lua" tests/soak/soak_server.lua "$tmp/cert.pem" "$tmp/key.pem" "$tmp" "$seed" \
  >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
line=
for _ in $(seq 300); do
  line=$(grep -m1 '^soak-server ' "$tmp/server.out" 2>/dev/null)
  [ -n "$line" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$line" ]; then
  echo "soak: the server did not start:" >&2
  cat "$tmp/server.err" >&2
  exit 2
fi
field() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

timeout $((seconds + 240)) "$load" seconds="$seconds" seed="$seed" pid="$(field pid)" \
  control="$(field control)" echo="$(field echo)" http="$(field http)" tls="$(field tls)" \
  raise="$(field raise)" conns="$conns" raise_conns="$raise_conns" stuck="$stuck" >"$tmp/report"
load_rc=$?

# The server ends on "quit" (soak_load's last command); it must end well.
server_rc=
for _ in $(seq 300); do
  kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid"; server_rc=$?; break; }
  sleep 0.1
done
[ -n "$server_rc" ] || server_rc="still running"
server_pid=

# The server's stderr holds only what the faults explain: a peer's reset,
# the raising handler's failure (its line, then its traceback), accept
# meeting EMFILE. Anything else is a finding.
awk '
  /^curio: server handler for .*: connection closed by the peer/ { reset++; tb = 0; next }
  /^curio: server handler for .* failed: .*soak: the handler raised on its marker/ { raised++; tb = 1; next }
  /^curio: run_server: accept failed \(EMFILE\), retrying/ { emfile++; tb = 0; next }
  tb && (/^stack traceback:/ || /^[ \t]/) { next }
  { other++; tb = 0; if (other <= 5) print "soak: unexpected on the server'"'"'s stderr: " $0 > "/dev/stderr" }
  END { printf "server_log_resets=%d\nserver_log_raised=%d\nserver_log_emfile=%d\nserver_log_other=%d\n",
        reset, raised, emfile, other }' "$tmp/server.err" >"$tmp/log"

# v NAME: a value of the report (n NAME: 0 when absent, for arithmetic).
v() { sed -n "s/^$1=//p" "$tmp/report" "$tmp/log" | head -1; }
n() { local x; x=$(v "$1"); echo "${x:-0}"; }
if [ ! -s "$tmp/report" ]; then
  echo "soak: the load generator reported nothing (exit status $load_rc)" >&2
  cat "$tmp/server.err" >&2
  exit 1
fi
failed=0
{
  cat "$tmp/report"
  cat "$tmp/log"
  echo "scaled=$scaled"
  echo "server_exit=$server_rc"
  [ "$load_rc" = 0 ] || failed=1
  ok() { if [ "$2" = 1 ]; then echo "check_$1=ok"; else echo "check_$1=FAIL"; failed=1; fi; }
  ok server_exit "$([ "$server_rc" = 0 ] && echo 1)"
  ok server_log "$([ "$(v server_log_other)" = 0 ] && echo 1)"
  ok emfile_met "$([ "$(n server_log_emfile)" -ge 1 ] && [ "$(n server_emfile_windows)" -ge 1 ] && echo 1)"
  ok raised_logged "$([ "$(v server_log_raised)" = "$(v server_raised)" ] && echo 1)"
  ok worker_kills "$([ "$(n server_proc_kills)" -ge 1 ] &&
    [ "$(v server_proc_broken)" = "$(v server_proc_kills)" ] && echo 1)"
  ok thread_cancels "$([ "$(n server_thread_cancels)" -ge 1 ] && echo 1)"
  ok fault_errors "$([ "$(v server_fault_errors)" = 0 ] && echo 1)"
  ok load_exit "$([ "$load_rc" = 0 ] && echo 1)"
  echo "failed=$failed"
} >"$tmp/block"
cat "$tmp/block"
failed=$(sed -n 's/^failed=//p' "$tmp/block")
v() { sed -n "s/^$1=//p" "$tmp/block" | head -1; }
n() { local x; x=$(v "$1"); echo "${x:-0}"; }
mb() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "Soak: $(v seconds) s (after $(v setup_seconds) s of setup and $(v warmup_seconds) s of warm-up), seed $(v seed), $(v conns) connections on each of echo, http and tls," \
  "$(v raise_conns) on the raising server, $(v stuck_conns) that never read" \
  "($(v slots) in all; open at once: $(v open_min) (at $(v open_min_at) s) to $(v open_max), the others" \
  "waiting their turn to connect)."
for k in echo http tls; do
  echo "  $k: $(v ${k}_round_trips) round trips (setup and warm-up included) on $(v ${k}_connections) connections," \
    "$(v ${k}_errors) errors; injected $(v ${k}_resets) resets mid-message and" \
    "$(v ${k}_halfcloses) half-closes, each ended as it must"
done
echo "  raise: $(v raise_round_trips) round trips on $(v raise_connections) connections," \
  "$(v raise_raised) handlers raised (server: $(v server_raised) of $(v server_raise_handlers)), $(v raise_errors) errors"
echo "  never reading: $(v stuck_conns) connections (echo $(v stuck_echo_connections), http" \
  "$(v stuck_http_connections), tls $(v stuck_tls_connections)) had sent $(v stuck_bytes_mid) bytes by mid-run," \
  "$(v stuck_bytes_end) at the end (the servers' writes wait), then read and checked" \
  "$(( $(n stuck_echo_bytes_checked) + $(n stuck_http_bytes_checked) + $(n stuck_tls_bytes_checked) )) bytes back"
echo "  bytes: $(v echo_bytes_checked) + $(v http_bytes_checked) + $(v tls_bytes_checked) checked," \
  "$(v bytes_corrupt) corrupt, $(v bytes_lost) lost"
echo "  server RSS: $(mb "$(v rss_before_kb)") MiB before, $(mb "$(v rss_start_kb)") at the start," \
  "$(mb "$(v rss_mid_kb)") mid, $(mb "$(v rss_end_kb)") at the end (growth $(v rss_growth)), $(mb "$(v rss_after_kb)") after"
echo "  server descriptors $(v fds_before) -> $(v fds_after), threads $(v threads_before) -> $(v threads_after)," \
  "children $(v children_before) -> $(v children_after), zombies $(v zombies)"
echo "  faults: $(v server_proc_kills) workers killed mid-call ($(v server_proc_broken) BrokenWorkerError," \
  "$(v server_proc_calls) calls after them succeeded), $(v server_thread_cancels) run_in_thread calls cancelled" \
  "($(v server_thread_calls) others completed), $(v server_emfile_windows) EMFILE window" \
  "($(v server_emfile_from_ms) to $(v server_emfile_to_ms) ms; accept met EMFILE: $(v server_log_emfile) servers" \
  "said so), $(v server_fault_errors) fault errors"
if [ "$scaled" = 1 ]; then echo "  NOTE: scaled down to the hard descriptor limit ($hard)"; fi
if [ "$failed" = 0 ]; then
  echo "soak: PASS"
else
  echo "soak: FAIL: $(sed -n 's/^check_\(.*\)=FAIL$/\1/p' "$tmp/block" | tr '\n' ' ')"
  exit 1
fi
