#!/usr/bin/env bash
# TLS echo-server benchmark: for each implementation, starts its TLS echo
# server on 127.0.0.1 pinned to CPU 0, then runs the C load generator on
# OpenSSL (bench/tls/tls_loadgen.c) pinned to CPU 1 at each point:
#
#   tls_echo_1x64, tls_echo_50x64, tls_echo_1x16384   round trips, one
#       message in flight per connection (send, wait for the whole echo,
#       check it, send the next)
#   tls_handshake   new connections, each a full handshake (ECDHE on
#       TLS_GROUPS), one 64-byte echo and close, TLS_HS_CONNS at a time
#   tls_bulk        TLS_BULK_MIB MiB written over one connection while the
#       echo is read back and checked
#
# Every server is started first and stays up, idle between its turns; then
# each point is measured for every implementation, one after the other, and
# the whole set is run TLS_RUNS times, each run starting one implementation
# further down the list (none always first or last). Each point's median
# run is printed, as name=value blocks separated by blank lines (with runs=
# and every run's ops_per_sec in ops_per_sec_runs=):
#
#   bench/tls.sh [impl...] | lua5.4 bench/summary.lua
#
# Implementations (default: all): c-openssl curio-lua cqueues curio-py
# asyncio uvloop node. One that cannot run here is printed as skipped=...,
# a failed point as error=... .
#
# The server certificate and key are made for the run with the `openssl`
# program in a temporary directory (removed at the end): a self-signed
# certificate for localhost and 127.0.0.1 on a TLS_CERT_KEY key.
#
# A point measured while other processes took more than TLS_QUIET CPUs
# (other_cpu, default 0.10) is measured again, at most TLS_TRIES times in
# all (default 3), and the quietest try is kept (tries= says how many).
#
# Environment: TLS_RUNS (default 3), TLS_SECONDS (measured seconds per echo
# and handshake point, default 3), TLS_WARMUP (seconds of warm-up before
# each, default 0.5), TLS_POINTS (default "echo_1x64 echo_50x64
# echo_1x16384 handshake bulk"), TLS_HS_CONNS (handshakes in flight,
# default 4), TLS_BULK_MIB (default 1024), TLS_GROUPS (the key exchange the
# client offers, default X25519; P-256 also), TLS_CERT_KEY (the
# certificate's key: an EC curve, default P-256, or rsa:BITS), TLS_TRIES,
# TLS_QUIET, TLS_RAW (a file to which every run's blocks are appended),
# TLS_START_TIMEOUT (seconds for a server to listen, default 15),
# CURIO_PY_SRC (an unpacked dabeaz/curio snapshot for curio-py), LUA,
# PYTHON, CC.
set -u
if [ -n "${CURIO_PY_SRC:-}" ] && [ -d "$CURIO_PY_SRC" ]; then
  CURIO_PY_SRC=$(cd "$CURIO_PY_SRC" && pwd)  # it may be relative to here
  export CURIO_PY_SRC
fi
cd "$(dirname "$0")/.." || exit 1
# common.sh: CPU pinning, free_port, start_server/stop_server, block
. bench/echo/common.sh
export ECHO_START_TIMEOUT=${TLS_START_TIMEOUT:-15}

runs=${TLS_RUNS:-3}
secs=${TLS_SECONDS:-3}
warmup=${TLS_WARMUP:-0.5}
points=${TLS_POINTS:-echo_1x64 echo_50x64 echo_1x16384 handshake bulk}
hs_conns=${TLS_HS_CONNS:-4}
tries=${TLS_TRIES:-3}
quiet=${TLS_QUIET:-0.10}
bulk_mib=${TLS_BULK_MIB:-1024}
cert_key=${TLS_CERT_KEY:-P-256}
export TLS_GROUPS=${TLS_GROUPS:-X25519}
tbuild=bench/tls/build
# an echo or handshake point: setup (at most 30 s), warm-up, window, drain
# (at most 5 s) and slack; bulk: 10 minutes (the load generator also gives
# up after 30 s without progress)
limit=$(awk -v s="$secs" -v w="$warmup" 'BEGIN { printf "%d", s + w + 60 }')
bulk_limit=600

tls_impls=(c-openssl curio-lua cqueues curio-py asyncio uvloop node)
echo_impls=("${tls_impls[@]}")  # the names check_names accepts
check_names "$@" || exit 2

tls_build() {  # tls_build NAME SOURCES...: compile bench/tls/SOURCES into $tbuild/NAME
  local name=$1 srcs=() f
  shift
  for f in "$@"; do srcs+=("bench/tls/$f"); done
  mkdir -p "$tbuild" && "$cc" -O2 -o "$tbuild/$name" "${srcs[@]}" -lssl -lcrypto
}
tls_build tls_loadgen tls_loadgen.c tls_echo.c tls_bulk.c || exit 1
tls_build c_tls_echo_server c_tls_echo_server.c || exit 1
command -v openssl >/dev/null || { echo "tls.sh: the openssl program is needed" >&2; exit 1; }

tmp=$(mktemp -d) || exit 1
cleanup() { stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cert=$tmp/cert.pem key=$tmp/key.pem raw=$tmp/raw.txt
case $cert_key in
  rsa:*) newkey=(-newkey "$cert_key") ;;
  *) newkey=(-newkey ec -pkeyopt "ec_paramgen_curve:$cert_key") ;;
esac
if ! openssl req -x509 "${newkey[@]}" -nodes -keyout "$key" -out "$cert" -days 2 \
     -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>"$tmp/openssl.err"; then
  cat "$tmp/openssl.err" >&2
  exit 1
fi

# tls_server_cmd IMPL PORT: sets `cmd` to the server's command line, or
# `why` to why IMPL cannot run here.
tls_server_cmd() {
  local impl=$1 port=$2 f
  cmd=() why=
  case $impl in
    c-openssl) cmd=("$tbuild/c_tls_echo_server" "$host" "$port" "$cert" "$key") ;;
    curio-lua)
      f=bench/tls/echo_server.lua
      if ! env "LUA_PATH=$ours_path" "LUA_CPATH=$ours_cpath" "$lua" -e \
           'local c = require "curio"; assert(c.ssl and c.ssl.create_default_context)' 2>/dev/null; then
        why="curio.ssl missing (build it: make)"; return
      fi
      cmd=(env "LUA_PATH=$ours_path" "LUA_CPATH=$ours_cpath" "$lua" "$f" "$host" "$port" "$cert" "$key") ;;
    cqueues)
      if ! "$lua" -e 'require "cqueues.socket"' 2>/dev/null; then why="cqueues not found"; return; fi
      if ! "$lua" -e 'require "openssl.ssl.context"' 2>/dev/null; then
        why="luaossl not found (Debian: lua-luaossl)"; return
      fi
      cmd=("$lua" bench/peers/cqueues_tls_echo_server.lua "$host" "$port" "$cert" "$key") ;;
    curio-py)
      if [ -z "${CURIO_PY_SRC:-}" ] || ! PYTHONPATH=$CURIO_PY_SRC "$py" -c 'import curio.ssl' 2>/dev/null; then
        why="curio not found (set CURIO_PY_SRC)"; return
      fi
      cmd=(env "PYTHONPATH=$CURIO_PY_SRC" "$py" bench/peers/curio_tls_echo_server.py "$host" "$port" "$cert" "$key") ;;
    asyncio | uvloop)
      if ! "$py" -c 'import ssl' 2>/dev/null; then why="$py or its ssl module not found"; return; fi
      if [ "$impl" = uvloop ] && ! "$py" -c 'import uvloop' 2>/dev/null; then why="uvloop not installed"; return; fi
      cmd=("$py" bench/peers/asyncio_tls_echo_server.py "$host" "$port" "$cert" "$key")
      [ "$impl" = uvloop ] && cmd+=(--uvloop) ;;
    node)
      if ! command -v node >/dev/null; then why="node not found"; return; fi
      cmd=(node bench/peers/node_tls_echo_server.js "$host" "$port" "$cert" "$key") ;;
    *) why="unknown implementation" ;;
  esac
}

point_name() { echo "tls_$1"; }  # the bench= name of point $1

# run_point IMPL POINT: one run of the load generator against $server_pid
run_point() {
  local impl=$1 p=$2 out rc lim=$limit args cs
  case $p in
    echo_*x*) cs=${p#echo_}  # echo_<conns>x<bytes>
      args=(echo "$host" "$port" "${cs%x*}" "${cs#*x}" "$secs" "$impl" "$warmup") ;;
    handshake) args=(handshake "$host" "$port" "$hs_conns" "$secs" "$impl" "$warmup") ;;
    bulk) args=(bulk "$host" "$port" "$bulk_mib" "$impl"); lim=$bulk_limit ;;
    *) block "$(printf 'bench=tls_%s\nimpl=%s\nerror=unknown point' "$p" "$impl")"; return ;;
  esac
  if ! kill -0 "$server_pid" 2>/dev/null; then
    block "$(printf 'bench=%s\nimpl=%s\nerror=server exited' "$(point_name "$p")" "$impl")"
    return
  fi
  local try best='' best_other='' other
  for ((try = 1; try <= tries; try++)); do
    out=$(TLS_SERVER_PID=$server_pid timeout "$lim" "${pin_client[@]}" "$tbuild/tls_loadgen" "${args[@]}")
    rc=$?
    if [ "$rc" != 0 ] || [ -z "$out" ]; then best=''; break; fi  # an error is reported
    # other processes' CPU during the window: keep the quietest try
    other=$(printf '%s\n' "$out" | sed -n 's/^other_cpu=//p')
    other=${other:-0}
    if [ -z "$best" ] || awk -v a="$other" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then
      best=$out best_other=$other
    fi
    awk -v a="$other" -v q="$quiet" 'BEGIN { exit !(a <= q) }' && break
    sleep 1
  done
  if [ -n "$best" ]; then
    block "$(printf '%s\ntries=%d' "$best" "$((try > tries ? tries : try))")"
  else
    [ "$rc" = 124 ] && rc="timeout after ${lim}s" || rc="loadgen exit status $rc"
    [ -n "$out" ] || out=$(printf 'bench=%s\nimpl=%s' "$(point_name "$p")" "$impl")
    block "$(printf '%s\nerror=%s' "$out" "$rc")"
  fi
}

# Every server is started first, each on its own port (idle, a server costs
# nothing), so that a point is measured for every implementation one after
# the other, in the same minute: the machine's slow and fast periods fall
# on all of them alike.
declare -A pid_of port_of why_of
start_all() {
  local impl
  for impl in "${selected_impls[@]}"; do
    tls_server_cmd "$impl" 0
    if [ -n "$why" ]; then why_of[$impl]="skipped=$why"; continue; fi
    if ! port=$(free_port 25401); then why_of[$impl]="error=no free port from 25401"; continue; fi
    tls_server_cmd "$impl" "$port"
    if ! start_server "$port"; then why_of[$impl]="error=$why"; continue; fi
    pid_of[$impl]=$server_pid port_of[$impl]=$port
    server_pid=
  done
}
stop_all() {
  local impl
  for impl in "${!pid_of[@]}"; do
    server_pid=${pid_of[$impl]}
    stop_server
    unset "pid_of[$impl]"
  done
}

selected_impls=()
for impl in "${tls_impls[@]}"; do
  selected "$impl" "$@" && selected_impls+=("$impl")
done
n=${#selected_impls[@]}
start_all
for ((r = 0; r < runs; r++)); do
  for p in $points; do
    for ((k = 0; k < n; k++)); do
      impl=${selected_impls[$(((r + k) % n))]}
      if [ -n "${why_of[$impl]:-}" ]; then
        block "$(printf 'bench=%s\nimpl=%s\n%s' "$(point_name "$p")" "$impl" "${why_of[$impl]}")"
      else
        server_pid=${pid_of[$impl]} port=${port_of[$impl]}
        run_point "$impl" "$p"
        server_pid=
      fi
    done
  done
done >"$raw"
stop_all
[ -n "${TLS_RAW:-}" ] && cat "$raw" >>"$TLS_RAW"
"$lua" bench/pick.lua median <"$raw"
