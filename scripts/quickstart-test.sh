#!/bin/sh
# Build cancelio with warnings as errors and run its tests (the dev preset).
# On Debian 12 it first installs whatever is missing: gcc, make, cmake,
# CMocka, pkg-config.  Exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."

missing=""
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_file() { [ -e "$1" ] || [ -e "/usr/local$1" ] || missing="$missing $2"; }
need_cmd cc gcc
need_file /usr/include/stdio.h libc6-dev
need_cmd make make
need_cmd cmake cmake
need_file /usr/include/cmocka.h libcmocka-dev
need_cmd pkg-config pkg-config

if [ -n "$missing" ]; then
    echo "quickstart: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086 # $missing is a list of package names
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
cmake --workflow --preset dev
