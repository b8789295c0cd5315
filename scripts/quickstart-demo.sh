#!/bin/sh
# Build cancelio (optimised, in build/quick) and run examples/deadline_demo;
# its arguments are passed to the demo.  On Debian 12 it first installs
# whatever is missing: gcc, make, cmake.
set -eu
cd "$(dirname "$0")/.."

missing=""
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_file() { [ -e "$1" ] || [ -e "/usr/local$1" ] || missing="$missing $2"; }
need_cmd cc gcc
need_file /usr/include/stdio.h libc6-dev
need_cmd make make
need_cmd cmake cmake

if [ -n "$missing" ]; then
    echo "quickstart: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086 # $missing is a list of package names
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
cmake -S . -B build/quick -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCANCELIO_BUILD_TESTS=OFF -DCANCELIO_BUILD_BENCH=OFF
cmake --build build/quick --target deadline_demo
exec build/quick/examples/deadline_demo "$@"
