#!/usr/bin/env bash
# What the platform fallbacks cost: cio_bench's figure 1 (ops on data that
# is ready, as a ratio to the raw syscall) in a native and in a POSIX-only
# (CANCELIO_PORTABLE) release build, one after the other, same machine.
#   scripts/bench-portable.sh [KIND...] [-- cio_bench options]
#   KIND: native, portable (default both); options default to --only ops
# Run it un-niced on a quiet machine for figures (docs/portability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    kinds+=("$1")
    shift
done
[ $# -gt 0 ] && shift
[ ${#kinds[@]} -gt 0 ] || kinds=(native portable)
[ $# -gt 0 ] || set -- --only ops

for kind in "${kinds[@]}"; do
    portable=OFF
    [ "$kind" = portable ] && portable=ON
    dir=build/bench-$kind
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCANCELIO_PORTABLE="$portable" \
        -DCANCELIO_BUILD_TESTS=OFF -DCANCELIO_BUILD_EXAMPLES=OFF -DCANCELIO_BUILD_TOOLS=OFF \
        -DCANCELIO_INSTALL=OFF >/dev/null
    cmake --build "$dir" --target cio_bench >/dev/null
done
for kind in "${kinds[@]}"; do
    echo "=== $kind"
    "build/bench-$kind/bench/cio_bench" "$@" | grep -E '^(BENCH|cio_bench:)'
done
