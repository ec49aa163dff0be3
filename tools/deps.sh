#!/bin/sh
# Installs the Debian packages curio for Lua needs, and only those missing.
#   sh tools/deps.sh          build and test: gcc, make, lua5.4, libev, libedit,
#                             OpenSSL (libssl-dev; the openssl program and
#                             curl for the TLS specs), busted, man (the man
#                             page's check), python3 (a Channel spec talks
#                             to Python's multiprocessing)
#   sh tools/deps.sh --dev    also lint, sanitizers, valgrind and the soak's
#                             prlimit (util-linux) (CI)
#   sh tools/deps.sh --bench  also what `make bench` runs and draws with: the
#                             peers (cqueues, luv, luaossl, cjson, trio, uvloop,
#                             node), wrk, hyperfine, gnuplot (the charts)
#   (both options may be given)
# Uses sudo when not run as root. Does nothing when all are present.
set -e
packages="gcc libc6-dev make pkg-config lua5.4 liblua5.4-dev libev-dev libedit-dev libssl-dev openssl curl lua-busted man-db groff-base python3"
for option in "$@"; do
  case $option in
    --dev) packages="$packages lua-check cppcheck valgrind util-linux" ;;
    --bench) packages="$packages lua-cqueues lua-luv lua-luaossl lua-cjson python3-trio python3-uvloop nodejs wrk hyperfine gnuplot-nox" ;;
    *) echo "tools/deps.sh: unknown option $option (--dev, --bench)" >&2; exit 2 ;;
  esac
done
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing:$missing"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
