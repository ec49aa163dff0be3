# bench/lib.sh: what bench/run.sh and bench/process.sh share, sourced by
# them (not run): the environment (from the repository root), block, run,
# scaled, wanted, build_limit and run_limit. A script sourcing it defines left_out BENCH IMPL (why
# an implementation is not run; nothing: it is run) before calling run.
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

first=1
block() {  # print a block, preceded by a blank line unless it is the first
  [ "$first" = 1 ] || echo
  first=0
  printf '%s\n' "$1"
}

# run BENCH IMPL FILE COMMAND...: one program, or a skipped/error block. With
# $from set, the program's `bench=$from` lines are relabelled `bench=BENCH`.
from=
run() {
  local bench=$1 impl=$2 file=$3 out rc why
  shift 3
  if [ -n "${BENCH_IMPLS:-}" ] && [[ " $BENCH_IMPLS " != *" $impl "* ]]; then
    return  # not among the implementations asked for
  fi
  why=$(left_out "$bench" "$impl")
  if [ -n "$why" ]; then
    block "$(printf 'bench=%s\nimpl=%s\nskipped=%s' "$bench" "$impl" "$why")"
    return
  fi
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
    if [ -n "$from" ] && [ "$from" != "$bench" ]; then
      out=$(printf '%s\n' "$out" | sed "s/^bench=$from\$/bench=$bench/")
    fi
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


# build_limit NAME [module]: compiles the C limit program bench/limits/NAME.c
# into bench/limits/build/NAME, or with `module` the Lua C module
# bench/limits/build/NAME.so (when missing or older than its sources), with
# the project's warnings (C11, -Wall -Wextra -Werror) and -O2; prints its
# path. CC (default cc), CFLAGS (default -O2) and LUA_INC as for make.
build_limit() {
  local src=bench/limits/$1.c out=bench/limits/build/$1 extra=(-pthread)
  if [ "${2:-}" = module ]; then
    out=$out.so
    # shellcheck disable=SC2207  # the include flags, split
    extra=(-shared -fPIC $(echo "${LUA_INC:-$(pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)}"))
  fi
  if [ ! -e "$out" ] || [ "$src" -nt "$out" ] || [ bench/limits/limit.h -nt "$out" ]; then
    # shellcheck disable=SC2086  # CFLAGS: several flags
    mkdir -p bench/limits/build &&
      ${CC:-cc} -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE ${CFLAGS:--O2} "${extra[@]}" \
        -o "$out" "$src" >&2 || return 1
  fi
  echo "$out"
}

# run_limit BENCH NAME N: builds bench/limits/NAME.c and runs it with N as
# BENCH's impl=limit block (an error block if it does not build).
run_limit() {
  local prog
  if prog=$(build_limit "$2"); then
    run "$1" limit "bench/limits/$2.c" "$prog" "$3"
  else
    block "$(printf 'bench=%s\nimpl=limit\nerror=build of bench/limits/%s.c failed' "$1" "$2")"
  fi
}
