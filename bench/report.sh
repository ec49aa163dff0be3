#!/usr/bin/env bash
# `make bench`: every benchmark family with every peer installed here, in one
# run, then the report: the raw blocks (bench/results/latest.txt), the CSV
# (bench/results/latest.csv: one row per figure), one chart per family
# (bench/results/<family>.png, gnuplot) and the ratio tables (stdout).
#
#   bash bench/report.sh [family...]     (default: all of them)
#   make bench [FAMILY="echo tls"]
#
# Families: run (bench/run.sh), echo (bench/echo.sh), idle
# (bench/echo_idle.sh), http (bench/http.sh), process (bench/process.sh),
# tls (bench/tls.sh), startup (bench/startup.sh), channel (bench/channel.sh,
# when present). Running some families replaces their sections of
# latest.txt and keeps the others' (each section says its date and commit,
# and so does each CSV row); the CSV and every chart are then made again
# from the whole file.
#
# Environment: BENCH_SCALE (multiplies run.sh's and process.sh's N; below
# 1 it also scales the other families' defaults: the seconds of each echo,
# TLS and HTTP point (at least 1, 1 and 2), TLS bulk's MiB (at least 64),
# start-up's runs and rounds (at least 20 and 2), and makes one TLS and one
# Channel run),
# CURIO_PY_SRC (an unpacked dabeaz/curio snapshot for the curio-py peer),
# and each script's own variables (ECHO_SECONDS, TLS_RUNS, ...), which win.
set -u
cd "$(dirname "$0")/.." || exit 1
lua=${LUA:-lua5.4}
out=bench/results
families=(run echo idle http process tls startup channel)

script_of() {
  case $1 in
    run) echo bench/run.sh ;;
    echo) echo bench/echo.sh ;;
    idle) echo bench/echo_idle.sh ;;
    http) echo bench/http.sh ;;
    process) echo bench/process.sh ;;
    tls) echo bench/tls.sh ;;
    startup) echo bench/startup.sh ;;
    channel) echo bench/channel.sh ;;
  esac
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${families[@]}")
for f in "${wanted[@]}"; do
  if [ -z "$(script_of "$f")" ]; then
    echo "bench/report.sh: unknown family '$f' (families: ${families[*]})" >&2
    exit 2
  fi
done

# BENCH_SCALE below 1: shorter points for the families it does not scale,
# in proportion (at least 1-second points, 64 MiB of TLS bulk, one TLS and
# one Channel run)
if awk -v s="${BENCH_SCALE:-1}" 'BEGIN { exit !(s < 1) }'; then
  at_least() {  # at_least DEFAULT MIN: DEFAULT * BENCH_SCALE, an integer, at least MIN
    awk -v d="$1" -v m="$2" -v s="$BENCH_SCALE" 'BEGIN { v = int(d * s + 0.5); print (v < m ? m : v) }'
  }
  export ECHO_SECONDS=${ECHO_SECONDS:-$(at_least 3 1)} ECHO_WARMUP=${ECHO_WARMUP:-0.2}
  export CHANNEL_RUNS=${CHANNEL_RUNS:-1}
  export TLS_RUNS=${TLS_RUNS:-1} TLS_SECONDS=${TLS_SECONDS:-$(at_least 3 1)} TLS_WARMUP=${TLS_WARMUP:-0.2}
  export TLS_BULK_MIB=${TLS_BULK_MIB:-$(at_least 1024 64)}
  export HTTP_SECONDS=${HTTP_SECONDS:-$(at_least 5 2)}
  export RUNS=${RUNS:-$(at_least 100 20)} ROUNDS=${ROUNDS:-$(at_least 5 2)}
fi

commit=unknown
if rev=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  commit=$rev
  # a change outside the results themselves makes the figures the tree's
  git diff --quiet HEAD -- . ':!bench/results' 2>/dev/null || commit=$rev-dirty
fi

# the snapshot's absolute path, to be kept out of the results
py_src=
if [ -n "${CURIO_PY_SRC:-}" ] && [ -d "$CURIO_PY_SRC" ]; then py_src=$(cd "$CURIO_PY_SRC" && pwd); fi

mkdir -p "$out"
section=$(mktemp) || exit 1
trap 'rm -f "$section"' EXIT
trap 'exit 130' INT TERM

# the knobs set in the environment (the scripts' defaults otherwise)
settings() {
  env | grep -E '^(BENCH_|ECHO_|TLS_|HTTP_|CHANNEL_|RUNS=|ROUNDS=)' | sort | tr '\n' ' ' | sed 's/ $//'
}
loadavg() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -; }

start_all=$(date +%s)
for f in "${wanted[@]}"; do
  script=$(script_of "$f")
  if [ ! -f "$script" ]; then
    echo "bench: $f: no $script here, skipped" >&2
    continue
  fi
  echo "bench: $f ($script) started $(date -u +%H:%M:%S), load average $(loadavg)" >&2
  t0=$(date +%s)
  {
    printf 'family=%s\nscript=%s\nrun_date=%s\ncommit=%s\nbench_scale=%s\nsettings=%s\nload_avg_start=%s\n' \
      "$f" "$script" "$(date -u +%Y-%m-%dT%H:%MZ)" "$commit" "${BENCH_SCALE:-1}" "$(settings)" "$(loadavg)"
  } >"$section"
  body=$(bash "$script" </dev/null)
  rc=$?
  t1=$(date +%s)
  printf 'load_avg_end=%s\nwall_seconds=%d\nexit_status=%d\n\n' "$(loadavg)" $((t1 - t0)) "$rc" >>"$section"
  # no path of this machine in what is kept
  printf '%s\n' "$body" | sed -e "s|$PWD/||g" ${py_src:+-e "s|$py_src|\$CURIO_PY_SRC|g"} >>"$section"
  "$lua" bench/report.lua merge "$out/latest.txt" "$section" || exit 1
  echo "bench: $f done in $((t1 - t0)) s (exit status $rc)" >&2
done
echo "bench: $(($(date +%s) - start_all)) s in all" >&2

[ -f "$out/latest.txt" ] || { echo "bench/report.sh: no $out/latest.txt" >&2; exit 1; }
"$lua" bench/report.lua csv "$out/latest.txt" >"$out/latest.csv.tmp" &&
  mv "$out/latest.csv.tmp" "$out/latest.csv" || exit 1
if command -v gnuplot >/dev/null; then
  "$lua" bench/chart.lua "$out/latest.csv" "$out" || exit 1
else
  echo "bench: gnuplot not found (Debian: gnuplot-nox; sh tools/deps.sh --bench): no charts" >&2
fi
"$lua" bench/report.lua ratios "$out/latest.csv"
