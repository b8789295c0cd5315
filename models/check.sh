#!/usr/bin/env bash
# Model-check the cancel protocol (models/cancel.pml, docs/model-checking.md)
# with spin: the real model must pass every check, each mutant must be caught
# by the checks named for it, and each witness (a scenario the checks rely
# on) must be reachable.  Exits 0 only if all of that holds.
#
#   models/check.sh                  the real model, the variants KTIMER, PARK
#                                    and CPARK, every mutant, every witness
#   models/check.sh --real           the real model only
#   models/check.sh --mutant NAME    one mutant (repeatable); 0 iff it is caught
#   models/check.sh --witness NAME   one witness (repeatable); 0 iff reachable
#   models/check.sh --variant KTIMER the model with the workers' kernel
#                                    timers (steps 2a, 3a, 5a), at NOPS=2
#                                    NCANCEL=1; 0 iff every check passes (it
#                                    is also part of the default run)
#   models/check.sh --variant PARK   the model with parked reads (steps 3p,
#                                    4p), at NOPS=2 NCANCEL=1; 0 iff every
#                                    check passes (also in the default run)
#   models/check.sh --variant CPARK  the model with reads parked on their
#                                    caller (steps 3c, 4c), at NOPS=2
#                                    NCANCEL=1; 0 iff every check passes
#                                    (also in the default run)
#   models/check.sh --variant ORPHAN the model of a file whose reads may be
#                                    orphaned (rule 15); 0 iff it passes like
#                                    the real model (it does not: see the doc)
#   models/check.sh --list           the mutants and witnesses
#   --per-op    also check (b) op by op (claims done0, done1, ...)
#   --trail     also print spin's counter-example for the first failed check of
#               each mutant (and the witness path for each witness)
#   -j N        checks run in parallel (default 2)
#   -D NAME=V   a bound passed to spin (NOPS, NCANCEL, NSTRAY), e.g. -D NSTRAY=2,
#               or a flag (-D NAME), e.g. -D CPARK_TO_WORKER or -D CPARK_KILL_FIRST
#               with --variant CPARK
#
# The commands, for a variant built with defines $D (nothing for the real
# model, -D<NAME> for mutant NAME, -DW_<NAME> for witness NAME; -O2 for the
# real model, -O1 for the small searches of mutants and witnesses):
#   spin $D -a cancel.pml
#   gcc -O2 -w -DSAFETY -DNOCLAIM       -o pan_safety pan.c
#   gcc -O2 -w -DNFAIR=3 -DCOLLAPSE     -o pan_live   pan.c
#   ./pan_safety -m1000000 -w25                   # (a) invalid end states,
#                                                 # (c), (d) assertions
#   ./pan_live -a -f -m1000000 -w25 -N cancels    # (b) every op, weak fairness
#   ./pan_live -a -f -m1000000 -w25 -N alldone    # the caller gets through
#   ./pan_live -a -f -m1000000 -w25 -N done0      # (b) op 0 alone (--per-op;
#                                                 #  done1, done2 likewise)
# Witnesses run only ./pan_safety.  A check passes when pan reports
# "errors: 0" and did not hit its depth limit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=$HERE/cancel.pml
DEPTH=1000000
HASH=25
JOBS=2

MUTANTS=(NO_RESIGNAL CHECK_UNLOCKED EINTR_IS_CANCEL KICK_AFTER_LEAVE SA_RESTART NOTE_UNARMED
    NO_KTIMER_REPEAT KTIMER_NOT_DISARMED TAKEBACK_BLIND PARK_UNMASKED PARK_NO_GONE PARK_CLOSE_EARLY
    CPARK_CHECK_FIRST CPARK_NO_GONE CPARK_NO_NUDGE CPARK_NO_SETTLE CPARK_SEEN_AT_PPOLL)
WITNESSES=(LATE LOST UNQUEUE TAKEBACK CALLER_TAKEBACK STEP2 TRY DATA RETIRE NOTE KTIMER KREPEAT KLEFT STALE
    RELEASE CRELEASE CNUDGE CSELF CSTRAY_LATE CSTRAY_EXIT)
# The notes (a poster, -DNOTES) multiply the states: the model with them is
# checked with smaller bounds, as REAL_NOTES, with the claim `notes` too.
NOTES_DEFS="-DNOTES -DNOPS=2 -DNCANCEL=1"
# So do the kernel timers (-DKTIMER: two more processes, a timer state per
# worker, a deadline per op): the variant KTIMER, its mutants and witnesses
# are checked with the same smaller bounds.
KTIMER_BOUNDS="-DNOPS=2 -DNCANCEL=1"
KTIMER_DEFS="-DKTIMER $KTIMER_BOUNDS"
# And the parked reads (-DPARK: a park word and a mask per worker, a debt
# per release): the same smaller bounds.
PARK_BOUNDS="-DNOPS=2 -DNCANCEL=1"
PARK_DEFS="-DPARK $PARK_BOUNDS"
# And the reads parked on their caller (-DCPARK: a park word, a mask and a
# pending bit for the caller, a deadline the setter moves and time lets
# pass): the same smaller bounds.
CPARK_BOUNDS="-DNOPS=2 -DNCANCEL=1"
CPARK_DEFS="-DCPARK $CPARK_BOUNDS"
declare -A EXTRA=(
    [NOTE_UNARMED]="$NOTES_DEFS"
    [W_NOTE]="$NOTES_DEFS"
    [REAL_NOTES]="$NOTES_DEFS"
    [V_KTIMER]="$KTIMER_BOUNDS"
    [NO_KTIMER_REPEAT]="$KTIMER_DEFS"
    [KTIMER_NOT_DISARMED]="$KTIMER_DEFS"
    [W_KTIMER]="$KTIMER_DEFS"
    [W_KREPEAT]="$KTIMER_DEFS"
    [W_KLEFT]="$KTIMER_DEFS"
    [W_STALE]="$KTIMER_DEFS"
    [V_PARK]="$PARK_BOUNDS"
    [PARK_UNMASKED]="$PARK_DEFS"
    [PARK_NO_GONE]="$PARK_DEFS"
    [PARK_CLOSE_EARLY]="$PARK_DEFS"
    [W_RELEASE]="$PARK_DEFS"
    [V_CPARK]="$CPARK_BOUNDS"
    [CPARK_CHECK_FIRST]="$CPARK_DEFS"
    [CPARK_NO_GONE]="$CPARK_DEFS"
    [CPARK_NO_NUDGE]="$CPARK_DEFS"
    [CPARK_NO_SETTLE]="$CPARK_DEFS"
    [CPARK_SEEN_AT_PPOLL]="$CPARK_DEFS"
    [W_CRELEASE]="$CPARK_DEFS"
    [W_CNUDGE]="$CPARK_DEFS"
    [W_CSELF]="$CPARK_DEFS"
    [W_CSTRAY_LATE]="$CPARK_DEFS"
    [W_CSTRAY_EXIT]="$CPARK_DEFS"
)
VARIANTS=(KTIMER PARK CPARK ORPHAN)
DEFAULT_VARIANTS=(KTIMER PARK CPARK) # run with no arguments too (ORPHAN fails, by design)

# What each check must report for each mutant: pass, end (invalid end
# state), assert (assertion violated) or cycle (acceptance cycle).
declare -A EXPECT=(
    [NO_RESIGNAL]="safety=end done=cycle alldone=cycle"
    [CHECK_UNLOCKED]="safety=end done=cycle alldone=cycle"
    [EINTR_IS_CANCEL]="safety=assert done=assert alldone=assert"
    [KICK_AFTER_LEAVE]="safety=assert done=assert alldone=assert"
    [SA_RESTART]="safety=pass done=cycle alldone=cycle"
    [NOTE_UNARMED]="safety=assert done=assert alldone=assert notes=assert"
    [NO_KTIMER_REPEAT]="safety=end done=cycle alldone=cycle"
    [KTIMER_NOT_DISARMED]="safety=assert done=assert alldone=assert"
    [TAKEBACK_BLIND]="safety=assert done=assert alldone=assert"
    [PARK_UNMASKED]="safety=end done=pass alldone=pass"
    [PARK_NO_GONE]="safety=assert done=assert alldone=assert"
    [PARK_CLOSE_EARLY]="safety=assert done=assert alldone=assert"
    [CPARK_CHECK_FIRST]="safety=end done=cycle alldone=cycle"
    [CPARK_NO_GONE]="safety=assert done=assert alldone=assert"
    [CPARK_NO_NUDGE]="safety=assert done=assert alldone=assert"
    [CPARK_NO_SETTLE]="safety=assert done=assert alldone=assert"
    [CPARK_SEEN_AT_PPOLL]="safety=assert done=assert alldone=assert"
)
declare -A WHAT=(
    [NO_RESIGNAL]="the caller never re-signals (step 5 removed)"
    [CHECK_UNLOCKED]="step 2 reads the reason before taking file->mu"
    [EINTR_IS_CANCEL]="EINTR means cancelled, the reason is not looked at"
    [KICK_AFTER_LEAVE]="step 6 keeps op->worker, step 4 signals whenever it is set"
    [SA_RESTART]="the handler has SA_RESTART: read(2) restarts, no EINTR"
    [NOTE_UNARMED]="arm_locked forgets a note queued between begin and prepare"
    [NO_KTIMER_REPEAT]="step 4 leaves the re-signal to the worker's timer but does not arm it (5a)"
    [KTIMER_NOT_DISARMED]="step 6 does not disarm the worker's timer"
    [TAKEBACK_BLIND]="the caller finishes a stopped QUEUED op without taking it out of the pool"
    [PARK_UNMASKED]="a parking worker leaves the cancel signal unblocked before its wait (3p)"
    [PARK_NO_GONE]="a released worker goes on without waiting for GONE (4p)"
    [PARK_CLOSE_EARLY]="cio_close returns while a released worker still waits on the fd"
    [W_RELEASE]="a stop finds the worker parked and releases the op itself (4p)"
    [CPARK_CHECK_FIRST]="a parking caller looks at the reason and the deadline before its word says IN (2b before 2a)"
    [CPARK_NO_GONE]="a released caller goes on without waiting for GONE (4c)"
    [CPARK_NO_NUDGE]="a deadline moved earlier does not wake the caller parked until the old one"
    [CPARK_NO_SETTLE]="a released caller whose handler did not run does not wait for the signal (no sigwaitinfo)"
    [CPARK_SEEN_AT_PPOLL]="the caller records the handler's count just before ppoll, not as each wait begins (4c)"
    [W_CRELEASE]="a stop finds the caller parked and takes its word (4c)"
    [W_CNUDGE]="a deadline moved earlier wakes the caller parked until a later one"
    [W_CSELF]="the parked caller finds its deadline passed and sets ETIMEDOUT itself (2b)"
    [W_CSTRAY_LATE]="a stray taken in a released wait: its release's signal comes after the mask's restore"
    [W_CSTRAY_EXIT]="... and after the caller returned from its last op (its thread may have exited)"
    [NOTE]="a note interrupts an op whose worker is in it"
    [LATE]="a signal sent for op j interrupts the syscall of a later op"
    [LOST]="a cancel signal is consumed in user space and lost"
    [UNQUEUE]="the canceller takes an op out of the pool's queue"
    [TAKEBACK]="the canceller takes back an op handed to a worker that has not taken it"
    [CALLER_TAKEBACK]="the caller takes its stopped op back itself (pool.mu was busy, or it was not yet submitted)"
    [STEP2]="the worker finds the reason at step 2 and never starts"
    [TRY]="a cancel lands during the caller's non-blocking try"
    [DATA]="the syscall returns data although the op has a reason"
    [RETIRE]="an idle worker retires (and the pool starts another)"
    [W_KTIMER]="the worker's own timer delivers the deadline, the worker sets ETIMEDOUT (3a)"
    [W_KREPEAT]="the timer's repeat (5a) reaches a syscall whose cancel signal was lost"
    [W_KLEFT]="the timer fires after its worker left the op (6), before the worker disarmed it"
    [W_STALE]="a worker takes an op whose deadline passed and stops it at step 2"
    [ORPHAN]="rule 15: the caller gives up on an op its worker did not end in time"
    [KTIMER]="the workers' kernel timers: steps 2a, 3a, 5a and the disarm at 6"
    [PARK]="reads parked in ppoll, released by a stop: steps 3p and 4p"
    [CPARK]="reads parked on their caller, released by a stop or a nudge: steps 3c and 4c"
)
declare -A LABEL=(
    [safety]="(a) end states, (c) (d) asserts"
    [alldone]="<> all ops returned (-f)"
    [cancels]="(b) every op: reason -> <> DONE (-f)"
    [notes]="(f) a note pending -> <> delivered (-f)"
)
# claims_for VARIANT: the claims checked for it (the notes models add
# `notes`; done<i> only for the ops the variant has)
claims_for() {
    local c n=$nops d
    for d in ${EXTRA[$1]:-}; do
        case $d in -DNOPS=*) n=${d#-DNOPS=} ;; esac
    done
    for c in "${CLAIMS[@]}"; do
        [[ $c == done* ]] && [ "${c#done}" -ge "$n" ] && continue
        echo -n "$c "
    done
    [[ " ${EXTRA[$1]:-} " == *" -DNOTES "* ]] && echo -n "notes"
    echo
}
# what WHAT says of witness W (its key is W_NAME where a variant has NAME)
what_witness() { echo "${WHAT[W_$1]:-${WHAT[$1]}}"; }

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }

want_all=0 want_real=0 trail=0 per_op=0
sel_mut=() sel_wit=() sel_var=() defs=()
while [ $# -gt 0 ]; do
    case $1 in
    --real) want_real=1 ;;
    --mutant) [ $# -ge 2 ] || usage; sel_mut+=("$2"); shift ;;
    --witness) [ $# -ge 2 ] || usage; sel_wit+=("$2"); shift ;;
    --variant) [ $# -ge 2 ] || usage; sel_var+=("$2"); shift ;;
    --trail) trail=1 ;;
    --per-op) per_op=1 ;;
    -j) [ $# -ge 2 ] || usage; JOBS=$2; shift ;;
    -D) [ $# -ge 2 ] || usage; defs+=("-D$2"); shift ;;
    --list)
        for m in "${MUTANTS[@]}"; do printf 'mutant  %-19s %s\n' "$m" "${WHAT[$m]}"; done
        for w in "${WITNESSES[@]}"; do printf 'witness %-19s %s\n' "$w" "$(what_witness "$w")"; done
        for v in "${VARIANTS[@]}"; do printf 'variant %-19s %s\n' "$v" "${WHAT[$v]}"; done
        exit 0 ;;
    -h|--help) usage ;;
    *) echo "check.sh: unknown argument: $1" >&2; usage ;;
    esac
    shift
done
# nothing selected (no arguments, or only --trail / --per-op / -j / -D): all
if [ $want_real -eq 0 ] && [ ${#sel_mut[@]} -eq 0 ] && [ ${#sel_wit[@]} -eq 0 ] &&
    [ ${#sel_var[@]} -eq 0 ]; then
    want_all=1
fi
if [ $want_all -eq 1 ]; then
    want_real=1 sel_mut=("${MUTANTS[@]}") sel_wit=("${WITNESSES[@]}") sel_var=("${DEFAULT_VARIANTS[@]}")
fi
for m in "${sel_mut[@]}"; do
    [ -n "${EXPECT[$m]:-}" ] || { echo "check.sh: no mutant $m (see --list)" >&2; exit 2; }
done
for w in "${sel_wit[@]}"; do
    [[ " ${WITNESSES[*]} " == *" $w "* ]] || { echo "check.sh: no witness $w (see --list)" >&2; exit 2; }
done
for v in "${sel_var[@]}"; do
    [[ " ${VARIANTS[*]} " == *" $v "* ]] || { echo "check.sh: no variant $v (see --list)" >&2; exit 2; }
done

for tool in spin gcc; do
    command -v $tool >/dev/null || { echo "check.sh: $tool not found (apt-get install $tool)" >&2; exit 2; }
done

nops=3
for d in "${defs[@]}"; do
    case $d in -DNOPS=*) nops=${d#-DNOPS=} ;; esac
done
CLAIMS=(cancels alldone)
if [ $per_op -eq 1 ]; then
    for ((i = 0; i < nops && i < 4; i++)); do CLAIMS+=("done$i"); done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cancel-model.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
T0=$(date +%s.%N)

# Run the commands given (one per argument) with at most $JOBS at a time.
parallel() {
    local cmd
    for cmd in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        eval "$cmd" &
    done
    wait
}

# build VARIANT [DEFINE]: spin -a and the two pan binaries in $WORK/VARIANT
build() {
    local v=$1 d=${2:-} dir=$WORK/$1 opt=-O1
    [[ $v == REAL* || $v == V_* ]] && opt=-O2
    mkdir -p "$dir" && cp "$MODEL" "$dir/cancel.pml"
    (
        cd "$dir" &&
            spin $d ${EXTRA[$v]:-} "${defs[@]}" -a cancel.pml >spin.out 2>&1 &&
            gcc $opt -w -DSAFETY -DNOCLAIM -o pan_safety pan.c 2>>spin.out &&
            { [[ $v == W_* ]] || gcc $opt -w -DNFAIR=3 -DCOLLAPSE -o pan_live pan.c 2>>spin.out; }
    ) || { echo "build failed" >"$dir/build.failed"; }
}

# check VARIANT CHECK: run pan, leave its output in VARIANT/CHECK.out
check() {
    local v=$1 c=$2 dir=$WORK/$1 t
    [ -e "$dir/build.failed" ] && return
    t=$(date +%s.%N)
    (
        cd "$dir" || exit
        if [ "$c" = safety ]; then
            ./pan_safety -m$DEPTH -w$HASH -tsafety
        else
            ./pan_live -a -f -m$DEPTH -w$HASH -N "$c" -t"$c"
        fi
    ) >"$dir/$c.out" 2>&1
    echo "$(date +%s.%N) $t" | awk '{ printf "%.1f\n", $1 - $2 }' >"$dir/$c.time"
}

# outcome VARIANT CHECK: pass | end | assert | cycle | depth | error
outcome() {
    local f=$WORK/$1/$2.out
    if [ -e "$WORK/$1/build.failed" ] || [ ! -e "$f" ]; then echo error
    elif grep -q "max search depth too small" "$f"; then echo depth
    elif grep -qE "^pan:[0-9]+: invalid end state" "$f"; then echo end
    elif grep -qE "^pan:[0-9]+: assertion violated" "$f"; then echo assert
    elif grep -qE "^pan:[0-9]+: acceptance cycle" "$f"; then echo cycle
    elif grep -qE "^pan:[0-9]+:" "$f"; then echo error
    elif grep -q ", errors: 0$" "$f"; then echo pass
    else echo error
    fi
}

describe() {
    case $1 in
    pass) echo "no errors" ;;
    end) echo "invalid end state" ;;
    assert) echo "assertion violated" ;;
    cycle) echo "acceptance cycle" ;;
    depth) echo "search depth too small" ;;
    *) echo "spin/pan failed" ;;
    esac
}

# states VARIANT CHECK: "N states stored[, M visited]"
states() {
    awk '/states, stored/ {
            s = $1 " states stored"
            if ($4 ~ /^\(/) { v = $4; sub(/^\(/, "", v); s = s ", " sprintf("%d", v) " visited" }
            print s
         }' "$WORK/$1/$2.out" 2>/dev/null
}

# the line of pan that says what went wrong, e.g. the assertion
error_line() {
    grep -m1 -E '^pan:[0-9]+:' "$WORK/$1/$2.out" 2>/dev/null | sed 's/^pan:[0-9]*: *//'
}

expected() { # expected MUTANT CHECK
    local e key=$2
    [[ $key == done* || $key == cancels ]] && key=done
    [ "$key" = notes ] && [[ " ${EXPECT[$1]} " != *" notes="* ]] && { echo pass; return; }
    for e in ${EXPECT[$1]}; do
        [ "${e%%=*}" = "$key" ] && { echo "${e#*=}"; return; }
    done
    echo "?"
}

# print_trail VARIANT CHECK DEFINE: the steps of the counter-example (the
# lock's own bookkeeping left out), then the final values of the globals
# A safety error is searched again for its shortest path (pan -i).
print_trail() {
    local v=$1 c=$2 d=${3:-} n=() t=cancel.pml.$2
    if [ "$c" = safety ]; then
        (cd "$WORK/$v" && gcc -O2 -w -DSAFETY -DNOCLAIM -DREACH -o pan_short pan.c &&
            ./pan_short -i -m$DEPTH -w$HASH -tshort >short.out 2>&1) && t=cancel.pml.short
    else
        n=(-N "$c")
    fi
    echo "    --- counter-example: $v, $c (spin -t -p, lock bookkeeping left out) ---"
    (cd "$WORK/$v" && spin $d ${EXTRA[$v]:-} "${defs[@]}" "${n[@]}" -k "$t" -t -p cancel.pml 2>&1) |
        awk '
            /trail ends|START OF CYCLE|assertion violated/ { print "    " $0 }
            /trail ends/ { tail = 1; next }
            tail && /^[ \t]+[a-z_]+(\[[0-9]+\])? = / { sub(/^[ \t]+/, ""); vals = vals " " $0; next }
            tail { next }
            /^ *[0-9]+: +proc +[0-9]+ terminates/ { printf "    %4s %s\n", $1 + 0, "(a worker thread exits)"; next }
            /^ *[0-9]+:[ \t]+proc/ {
                if ($0 ~ /\[(assert\(\(mu==|mu = |\(\(mu==0\)\)\]|else\]|goto |\(1\)\])/) next
                step = $1; sub(/:$/, "", step)
                who = $4; sub(/^\(/, "", who); sub(/:[0-9]+\)$/, "", who)
                where = $5; sub(/^cancel.pml:/, "", where)
                stmt = $0; sub(/^[^[]*\[/, "", stmt); sub(/\]$/, "", stmt)
                printf "    %4s %-10s line %-4s %s\n", step, who, where, stmt
            }
            END { if (vals != "") print "    final:" vals }'
}

# ---- build everything, then run every check
builds=() checks=()
if [ $want_real -eq 1 ]; then
    builds+=("build REAL")
    # the longest first: alldone, then the other claims, then safety
    checks+=("check REAL alldone")
    for c in "${CLAIMS[@]}"; do [ "$c" = alldone ] || checks+=("check REAL $c"); done
    checks+=("check REAL safety")
    builds+=("build REAL_NOTES")
    for c in $(claims_for REAL_NOTES); do checks+=("check REAL_NOTES $c"); done
    checks+=("check REAL_NOTES safety")
fi
for v in "${sel_var[@]}"; do
    builds+=("build V_$v -D$v")
    checks+=("check V_$v alldone")
    for c in $(claims_for "V_$v"); do [ "$c" = alldone ] || checks+=("check V_$v $c"); done
    checks+=("check V_$v safety")
done
for m in "${sel_mut[@]}"; do
    builds+=("build $m -D$m")
    checks+=("check $m safety")
    for c in $(claims_for "$m"); do checks+=("check $m $c"); done
done
for w in "${sel_wit[@]}"; do
    builds+=("build W_$w -DW_$w")
    checks+=("check W_$w safety")
done

echo "spin: $(spin -V | head -1); model: $MODEL${defs[*]:+; ${defs[*]}}"
echo "(jobs: $JOBS; building ${#builds[@]} variants, running ${#checks[@]} checks)"
parallel "${builds[@]}"
parallel "${checks[@]}"

status=0

# report_model VARIANT DEFINE: every check must pass
report_model() {
    local v=$1 d=${2:-} c o r label
    [ -e "$WORK/$v/build.failed" ] && sed 's/^/        /' "$WORK/$v/spin.out"
    for c in safety $(claims_for "$v"); do
        o=$(outcome "$v" "$c")
        if [ "$o" = pass ]; then r=PASS; else r=FAIL; status=1; fi
        label=${LABEL[$c]:-"(b) reason[${c#done}] -> <> DONE (-f)"}
        printf '  %-4s  %-8s %-38s %-42s %5s s\n' "$r" "$c" "$label" "$(states "$v" "$c")" "$(cat "$WORK/$v/$c.time" 2>/dev/null)"
        if [ "$o" != pass ]; then
            echo "        spin reports: $(describe "$o"): $(error_line "$v" "$c")"
            [ $trail -eq 1 ] && print_trail "$v" "$c" "$d"
        fi
    done
}

if [ $want_real -eq 1 ]; then
    echo
    echo "REAL MODEL: every check must pass"
    report_model REAL
    echo
    echo "REAL MODEL WITH NOTES ($NOTES_DEFS): every check must pass"
    report_model REAL_NOTES
fi

for v in "${sel_var[@]}"; do
    echo
    echo "VARIANT $v (${WHAT[$v]}): every check must pass"
    report_model "V_$v" "-D$v"
done

if [ ${#sel_mut[@]} -gt 0 ]; then
    echo
    echo "MUTANTS: each must be caught (every check reports what is expected)"
    for m in "${sel_mut[@]}"; do
        ok=1 first=""
        for c in safety $(claims_for "$m"); do
            o=$(outcome "$m" "$c") e=$(expected "$m" "$c")
            [ "$o" = "$e" ] || ok=0
            [ -z "$first" ] && [ "$o" != pass ] && [ "$o" != error ] && first=$c
        done
        if [ $ok -eq 1 ]; then r=CAUGHT; else r="NOT CAUGHT"; status=1; fi
        printf '  %-10s %s: %s\n' "$r" "$m" "${WHAT[$m]}"
        [ -e "$WORK/$m/build.failed" ] && sed 's/^/        /' "$WORK/$m/spin.out"
        for c in safety $(claims_for "$m"); do
            o=$(outcome "$m" "$c") e=$(expected "$m" "$c")
            if [ "$o" = "$e" ]; then mark=ok; else mark="UNEXPECTED (wanted: $(describe "$e"))"; fi
            msg=$(describe "$o")
            [ "$o" = assert ] && msg=$(error_line "$m" "$c" | sed 's/ (at depth.*//')
            printf '      %-8s %-52s %-38s %s\n' "$c" "$msg" "$(states "$m" "$c")" "$mark"
        done
        [ $trail -eq 1 ] && [ -n "$first" ] && print_trail "$m" "$first" "-D$m"
    done
fi

if [ ${#sel_wit[@]} -gt 0 ]; then
    echo
    echo "WITNESSES: each scenario must be reachable (its assertion must fail)"
    for w in "${sel_wit[@]}"; do
        o=$(outcome "W_$w" safety)
        if [ "$o" = assert ]; then r=REACHED; else r=UNREACHED; status=1; fi
        printf '  %-9s %-8s %-62s %s\n' "$r" "$w" "$(what_witness "$w")" "$(states "W_$w" safety)"
        [ "$o" = assert ] || echo "        spin reports: $(describe "$o")"
        [ $trail -eq 1 ] && [ "$o" = assert ] && print_trail "W_$w" safety "-DW_$w"
    done
fi

echo
times >"$WORK/times" # (a builtin: in a pipe it would run in a subshell)
cpu=$(tail -1 "$WORK/times" | awk '{ u = $1; s = $2; sub(/s$/, "", u); sub(/s$/, "", s)
    split(u, a, "m"); split(s, b, "m"); printf "%.1f", a[1] * 60 + a[2] + b[1] * 60 + b[2] }')
echo "total time: $(echo "$(date +%s.%N) $T0" | awk '{ printf "%.1f", $1 - $2 }') s (cpu: $cpu s)"
[ $want_all -eq 1 ] && echo "(not run by default: --variant ORPHAN, reads that may outlive their caller; see docs/model-checking.md)"
if [ $status -eq 0 ]; then echo "RESULT: OK"; else echo "RESULT: FAILED"; fi
exit $status
