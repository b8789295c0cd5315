#!/bin/sh
# Plot the benchmark into docs/ (see docs/performance.md).
#
#   scripts/bench-plot.sh [DIR]
#
# DIR (default build/bench-results) holds bench.txt, the output of
# `cio_bench --samples DIR`, and the sample files that run wrote.  When
# DIR/bench.txt is missing the script first runs the benchmark there
# (CIO_BENCH, default build/release/bench/cio_bench; CIO_BENCH_ARGS, e.g.
# --quick, are passed on).  It writes:
#   docs/perf-latency.png  distribution of deadline lateness and of cancel
#                          latency, cancelio against its floors
#   docs/perf-targets.png  each target's measured value as a share of what
#                          the target allows (1 = at the target)
#   DIR/table.md           the results as a Markdown table, for
#                          docs/performance.md
# CIO_BENCH_COMMIT names the commit measured in the titles (default HEAD).
# Needs gnuplot (Debian: gnuplot-nox).
set -eu
cd "$(dirname "$0")/.."

dir=${1:-build/bench-results}
bench=${CIO_BENCH:-build/release/bench/cio_bench}
mkdir -p "$dir"
if [ ! -s "$dir/bench.txt" ]; then
    # shellcheck disable=SC2086 # CIO_BENCH_ARGS is a list of flags
    "$bench" --samples "$dir" ${CIO_BENCH_ARGS:-} | tee "$dir/bench.txt"
fi
command -v gnuplot >/dev/null 2>&1 || {
    echo "bench-plot: gnuplot is missing (apt-get install gnuplot-nox)" >&2
    exit 1
}

# A sample file (ns, one a line) as a CDF: microseconds, fraction below.
cdf() {
    sort -n "$dir/$1" | awk -v n="$(wc -l <"$dir/$1")" '{ print $1 / 1000, NR / n }' >"$dir/$1.cdf"
}
for f in deadline_cio deadline_cio_heap deadline_nanosleep deadline_poll \
    cancel_cio_cross cancel_raw_cross cancel_cio_same cancel_raw_same; do
    [ -s "$dir/$f.txt" ] || { echo "bench-plot: $dir/$f.txt is missing" >&2; exit 1; }
    cdf "$f.txt"
done

# Every BENCH line with a target: its name and measured / allowed (a count
# that must be 0 is left out when it is 0, drawn at 10 when it is not).
awk '/^BENCH / && / target_/ {
    name = ""; ratio = ""; value = ""; target = ""; kind = "";
    for (i = 2; i <= NF; i++) {
        split($i, kv, "=");
        if (kv[1] == "note") break; # the rest of the line is free text
        if (kv[1] == "name") name = kv[2];
        else if (kv[1] == "ratio") ratio = kv[2];
        else if (kv[1] ~ /^value_/) value = kv[2];
        else if (kv[1] == "target_ratio") { target = kv[2]; kind = "ratio" }
        else if (kv[1] ~ /^target_/) { target = kv[2]; kind = "value" }
    }
    if (kind == "value" && target == 0 && value == 0)
        next; # a count that must be 0 and is: pass/fail, nothing to scale
    used = kind == "ratio" ? ratio / target : (target > 0 ? value / target : 10);
    if (used < 0.1) used = 0.1;
    print n++, "\"" name "\"", used
}' "$dir/bench.txt" >"$dir/targets.dat"

# The BENCH lines as a Markdown table (note= is the rest of its line).
awk '
function show(v, u) {
    v += 0;
    if (u == "ns") {
        if (v >= 1e7 || v <= -1e7) return sprintf("%.1f ms", v / 1e6);
        if (v >= 1e4 || v <= -1e4) return sprintf("%.1f us", v / 1e3);
        return sprintf("%.0f ns", v);
    }
    if (u == "kib") return sprintf("%.1f KiB", v);
    if (u == "gibps") return sprintf("%.2f GiB/s", v);
    return sprintf("%d", v);
}
BEGIN {
    print "| fig | figure | cancelio | floor | floor value | ratio | target | met |";
    print "|---|---|---:|---|---:|---:|---|---|";
}
/^BENCH / {
    line = $0; note = "";
    if ((i = index(line, " note=")) > 0) { note = substr(line, i + 6); line = substr(line, 1, i - 1) }
    n = split(line, f, " ");
    delete kv; unit = ""; tunit = "";
    for (j = 2; j <= n; j++) {
        eq = index(f[j], "="); k = substr(f[j], 1, eq - 1); kv[k] = substr(f[j], eq + 1);
        if (k ~ /^value_/) unit = substr(k, 7);
        if (k ~ /^target_/) tunit = substr(k, 8);
    }
    base = ("baseline" in kv) ? kv["baseline"] : "-";
    bval = ("baseline_" unit in kv) ? show(kv["baseline_" unit], unit) : "-";
    ratio = ("ratio" in kv) ? sprintf("%.2fx", kv["ratio"]) : "-";
    target = "-";
    if (tunit == "ratio") target = "<= " kv["target_ratio"] "x";
    else if (tunit != "") target = "<= " show(kv["target_" tunit], tunit);
    met = kv["met"] == "n/a" ? "" : kv["met"];
    printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", kv["fig"], kv["name"], show(kv["value_" unit], unit), base, bval, ratio, target, met;
}' "$dir/bench.txt" >"$dir/table.md"

commit=${CIO_BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
gnuplot <<EOF
set terminal pngcairo noenhanced size 1200,520 font "sans,10"
set output "docs/perf-latency.png"
set multiplot layout 1,2 title "cancelio latency against its floors (commit $commit, same run)"
set key bottom right
set grid
set logscale x
set ylabel "fraction of trials"
set yrange [0:1]
set title "deadline lateness: a 10 ms timeout on an empty pipe"
set xlabel "returned after the deadline (us, log scale)"
plot "$dir/deadline_cio.txt.cdf" using 1:2 with lines lw 2 title "cio_read (timerfd)", \
     "$dir/deadline_cio_heap.txt.cdf" using 1:2 with lines lw 2 title "cio_read (heap)", \
     "$dir/deadline_nanosleep.txt.cdf" using 1:2 with lines lw 2 title "clock_nanosleep (floor)", \
     "$dir/deadline_poll.txt.cdf" using 1:2 with lines lw 2 title "poll + read"
set title "cancel latency: until the blocked read returns (threads pinned)"
set xlabel "latency (us, log scale)"
plot "$dir/cancel_cio_cross.txt.cdf" using 1:2 with lines lw 2 lc 1 title "cio_cancel, other CPU", \
     "$dir/cancel_raw_cross.txt.cdf" using 1:2 with lines lw 2 lc 1 dt 2 title "pthread_kill -> EINTR, other CPU (floor)", \
     "$dir/cancel_cio_same.txt.cdf" using 1:2 with lines lw 2 lc 2 title "cio_cancel, same CPU", \
     "$dir/cancel_raw_same.txt.cdf" using 1:2 with lines lw 2 lc 2 dt 2 title "pthread_kill -> EINTR, same CPU (floor)"
unset multiplot

set output "docs/perf-targets.png"
set title "each target: measured / allowed (<= 1 is met; log scale; commit $commit)"
unset logscale x
set logscale y
set yrange [0.1:*]
set xrange [-0.6:*]
set ylabel "measured / allowed"
unset xlabel
set xtics rotate by -35 left
set bmargin 10
set rmargin 10
set style fill solid 0.7
set boxwidth 0.7
set key off
plot "$dir/targets.dat" using 1:3:xtic(2) with boxes lc rgb "#4477aa", 1 with lines lw 2 lc rgb "#cc3311"
EOF
echo "bench-plot: wrote docs/perf-latency.png, docs/perf-targets.png and $dir/table.md from $dir"
