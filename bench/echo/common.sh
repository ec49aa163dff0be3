# shellcheck shell=bash
# Shared by bench/echo.sh and bench/echo_idle.sh (sourced, from the
# repository root): the echo servers, the CPU pinning, and starting, waiting
# for and stopping one server. Not a benchmark itself.

lua=${LUA:-lua5.4}
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x /usr/bin/python3 ]; then py=/usr/bin/python3
else py=python3; fi
export PYTHONDONTWRITEBYTECODE=1
cc=${CC:-cc}
build=bench/echo/build
host=127.0.0.1

# The project's modules for the curio-lua servers, then Lua's defaults (";;").
ours_path='./lua/?.lua;./lua/?/init.lua;;'
ours_cpath='./build/?.so;;'

# limit: the C server (echo/c_echo_server.c), the limit the others are
# measured against (named c-epoll before: the name is still accepted)
echo_impls=(limit curio-lua curio-lua-stream luv cqueues curio-py asyncio uvloop node)
extra_impls=()  # names a script runs besides (echo_idle.sh: limit-coroutine)

# Server on CPU 0, client on CPU 1, when there are two CPUs to pin to.
pin_server=() pin_client=()
if command -v taskset >/dev/null && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
  pin_server=(taskset -c 0) pin_client=(taskset -c 1)
else
  echo "note: not pinning (no taskset or fewer than 2 CPUs)" >&2
fi

# build_c NAME: compile bench/echo/NAME.c into $build/NAME.
build_c() {
  mkdir -p "$build" && "$cc" -O2 -o "$build/$1" "bench/echo/$1.c"
}

# server_cmd IMPL PORT: sets the array `cmd` to the server's command line,
# or `why` to why IMPL cannot run here (and leaves `cmd` empty).
server_cmd() {
  local impl=$1 port=$2 f
  cmd=() why=
  case $impl in
    limit) cmd=("$build/c_echo_server" "$host" "$port") ;;
    curio-lua | curio-lua-stream)
      f=examples/echo_server.lua
      [ "$impl" = curio-lua-stream ] && f=examples/echo_stream_server.lua
      if [ ! -f "$f" ]; then why="no program ($f)"; return; fi
      cmd=(env "LUA_PATH=$ours_path" "LUA_CPATH=$ours_cpath" "$lua" "$f" "$host" "$port") ;;
    luv)
      if ! "$lua" -e 'require "luv"' 2>/dev/null; then why="luv not found"; return; fi
      cmd=("$lua" bench/peers/luv_echo_server.lua "$host" "$port") ;;
    cqueues)
      if ! "$lua" -e 'require "cqueues.socket"' 2>/dev/null; then why="cqueues not found"; return; fi
      cmd=("$lua" bench/peers/cqueues_echo_server.lua "$host" "$port") ;;
    curio-py)
      if [ -z "${CURIO_PY_SRC:-}" ] || ! PYTHONPATH=$CURIO_PY_SRC "$py" -c 'import curio' 2>/dev/null; then
        why="curio not found (set CURIO_PY_SRC)"; return
      fi
      cmd=(env "PYTHONPATH=$CURIO_PY_SRC" "$py" bench/peers/curio_echo_server.py "$host" "$port") ;;
    asyncio)
      if ! command -v "$py" >/dev/null; then why="$py not found"; return; fi
      cmd=("$py" bench/peers/asyncio_echo_server.py "$host" "$port") ;;
    uvloop)
      if ! "$py" -c 'import uvloop' 2>/dev/null; then why="uvloop not installed"; return; fi
      cmd=("$py" bench/peers/asyncio_echo_server.py "$host" "$port" --uvloop) ;;
    node)
      if ! command -v node >/dev/null; then why="node not found"; return; fi
      cmd=(node bench/peers/node_echo_server.js "$host" "$port") ;;
    *) why="unknown implementation" ;;
  esac
}

# port_busy PORT: is any TCP socket, other than one in TIME_WAIT, bound to it?
port_busy() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == h && $4 != "06" { f = 1 }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port FROM: the first port from FROM on (at most 100 tried) that is free.
free_port() {
  local p=$1 i
  for ((i = 0; i < 100; i++)); do
    if ! port_busy "$p"; then echo "$p"; return 0; fi
    p=$((p + 1))
  done
  return 1
}

# listening PORT: is a socket listening on PORT?
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == h && $4 == "0A" { f = 1 }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# start_server PORT: start "${cmd[@]}" pinned, stdout to /dev/null, as
# $server_pid; wait until it listens (at most ECHO_START_TIMEOUT seconds,
# default 15). On failure, sets `why` (and stops it). Not in a subshell.
server_pid=
start_server() {
  local port=$1 i limit=${ECHO_START_TIMEOUT:-15}
  "${pin_server[@]}" "${cmd[@]}" >/dev/null &
  server_pid=$!
  for ((i = 0; i < limit * 10; i++)); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" 2>/dev/null
      why="server exited at start (status $?)"
      server_pid=
      return 1
    fi
    if listening "$port"; then return 0; fi
    sleep 0.1
  done
  stop_server
  why="server not listening after ${limit}s"
  return 1
}

# stop_server: SIGTERM to $server_pid, SIGKILL after 3 s, then reap it.
stop_server() {
  local i
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  for ((i = 0; i < 30; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=
}

first_block=1
block() {  # print a block, preceded by a blank line unless it is the first
  [ "$first_block" = 1 ] || echo
  first_block=0
  printf '%s\n' "$1"
}

# check_names ARGS...: complain (on stderr) about names that are no
# implementation; returns 1 if there is one.
check_names() {
  local w i ok=0
  for w in "$@"; do
    for i in "${echo_impls[@]}" "${extra_impls[@]}" c-epoll; do [ "$w" = "$i" ] && continue 2; done
    echo "unknown implementation: $w (known: ${echo_impls[*]} ${extra_impls[*]})" >&2
    ok=1
  done
  return $ok
}

# selected IMPL ARGS...: is IMPL among ARGS (or ARGS empty)? (c-epoll: limit)
selected() {
  local w
  [ "$#" -eq 1 ] && return 0
  for w in "${@:2}"; do
    [ "$w" = "$1" ] || { [ "$w" = c-epoll ] && [ "$1" = limit ]; } && return 0
  done
  return 1
}
