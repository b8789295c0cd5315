#!/usr/bin/env bash
# Build CMocka for musl, from Debian's source package, into a prefix under
# build/ (nothing outside the repository's build/ directory is written but
# the apt source line and the packages apt installs).
#   scripts/musl-cmocka.sh [PREFIX]   default: build/musl-cmocka/prefix
# Needs musl-tools, dpkg-dev and cmake; adds a deb-src line for the
# system's release when apt has none, so that `apt-get source` works.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-$PWD/build/musl-cmocka/prefix}
work=$PWD/build/musl-cmocka
if [ -f "$prefix/include/cmocka.h" ]; then
    echo "musl-cmocka: already in $prefix"
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
if ! grep -rqs '^\(deb-src\|Types:.*deb-src\)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # shellcheck disable=SC1091 # the system's own file
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    echo "deb-src http://deb.debian.org/debian $codename main" |
        $sudo tee /etc/apt/sources.list.d/cancelio-deb-src.list >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
fi

rm -rf "$work/src" "$work/build"
mkdir -p "$work/src"
(cd "$work/src" && apt-get source -q cmocka >/dev/null)
src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'cmocka-*' | head -n 1)
CC=musl-gcc cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF >/dev/null
cmake --build "$work/build" >/dev/null
cmake --install "$work/build" >/dev/null
echo "musl-cmocka: installed in $prefix"
