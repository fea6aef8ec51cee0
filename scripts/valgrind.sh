#!/usr/bin/env bash
# Race detection (helgrind, drd) and leak checking (memcheck) on stable Rust.
#
# Builds the soak example (examples/kthread-soak.rs, which runs the
# randomized stress engine of tests/stress/mod.rs) in the dev profile with
# --cfg kthread_valgrind, under which every atomic and lock of the crate
# tells the race detectors its happens-before edges (src/sync/annotated.rs),
# then runs a fixed-length mix under each tool with --error-exitcode=1:
#
#   helgrind  --history-level=approx  --suppressions=valgrind/helgrind.supp
#   drd                               --suppressions=valgrind/drd.supp
#   memcheck  --leak-check=full --errors-for-leak-kinds=definite   --suppressions=valgrind/memcheck.supp
#
# valgrind/helgrind.supp explains how the tools see the crate's
# synchronisation and why each remaining suppression cannot be an
# annotation.
#
# Helgrind's --history-level=approx: the annotations make every release a
# new segment for Helgrind, and with full history (the default) keeping a
# stack trace for every conflicting access costs several times the whole
# run. Detection is the same; only a report's second stack is given as the
# range of segments it happened in. Rerun with
# KTHREAD_VG_FLAGS=--history-level=full (a later flag wins) to see it whole.
#
# Usage: scripts/valgrind.sh [helgrind] [drd] [memcheck]   (default: all three)
#
# Environment:
#   KTHREAD_STRESS_SEED  seed (default: from the clock; printed, so a failure replays)
#   KTHREAD_VG_OPS       operations per driver per round (default: helgrind 4000,
#                        drd 250, memcheck 30000; memcheck is the fastest tool;
#                        drd handles the annotations' happens-before edges in
#                        time that grows faster than the number of operations:
#                        3,000 operations took about 50 s, 48,000 did not end
#                        in 12 minutes; since half the stress model's kthreads
#                        are interruptible (a signal per stop and park, which
#                        the tools make expensive), 3,000 take 300 s and
#                        1,500 about 70 s)
#   KTHREAD_VG_ROUNDS    rounds; each builds and destroys its workers (default 2)
#   KTHREAD_VG_DRIVERS   driver threads (default 3)
#   KTHREAD_VG_FLAGS     extra valgrind flags (for example --fair-sched=yes, much slower)
#   KTHREAD_VG_LOGDIR    where the logs go (default: <target dir>/valgrind)
#
# With the defaults each tool takes about 40-75 s on a 2-CPU machine (helgrind
# 36,000 operations, drd 3,000, memcheck 180,000). Exit status: 0 if every tool is clean,
# otherwise 1. Each tool's full log (with --gen-suppressions=all, so a new
# report comes with a ready-made entry to review) is in the log directory.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(helgrind drd memcheck)
for t in "${tools[@]}"; do
    case "$t" in
        helgrind | drd | memcheck) ;;
        *) echo "unknown tool: $t (helgrind, drd or memcheck)" >&2; exit 2 ;;
    esac
done

if ! command -v valgrind >/dev/null; then
    echo "valgrind not found: installing it"
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
valgrind --version

# drd.supp is helgrind.supp with the other kind; refuse to run on a stale copy.
if ! diff -q <(sed 's/^   Helgrind:Race$/   drd:ConflictingAccess/' valgrind/helgrind.supp) \
    valgrind/drd.supp >/dev/null; then
    echo "valgrind/drd.supp is out of date; regenerate it with:" >&2
    echo "  sed 's/^   Helgrind:Race\$/   drd:ConflictingAccess/' valgrind/helgrind.supp > valgrind/drd.supp" >&2
    exit 2
fi

# The dev profile keeps every crate function a real frame, which the
# suppressions match by name. The annotated build has its own target dir, so
# it does not invalidate the one `cargo test` uses; memcheck runs the same
# binary (it ignores the race detectors' client requests).
target="${CARGO_TARGET_DIR:-target}"
vgtarget="$target/valgrind-build"
RUSTFLAGS="--cfg kthread_valgrind" CARGO_TARGET_DIR="$vgtarget" \
    cargo build --example kthread-soak --example tls-teardown
bin="$vgtarget/debug/examples/kthread-soak"
logdir="${KTHREAD_VG_LOGDIR:-$target/valgrind}"
mkdir -p "$logdir"

seed="${KTHREAD_STRESS_SEED:-$(date +%s%N)}"
rounds="${KTHREAD_VG_ROUNDS:-2}"
drivers="${KTHREAD_VG_DRIVERS:-3}"
echo "seed $seed, $rounds rounds x $drivers drivers (KTHREAD_STRESS_SEED=$seed replays)"

status=0
summary=()
for tool in "${tools[@]}"; do
    log="$logdir/$tool.log"
    out="$logdir/$tool.out"
    flags=(--tool="$tool" --error-exitcode=1 --num-callers=40 --gen-suppressions=all -v
        --log-file="$log")
    envs=()
    case "$tool" in
        helgrind)
            flags+=(--history-level=approx --check-stack-refs=no --suppressions=valgrind/helgrind.supp)
            envs=(GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0)
            ops="${KTHREAD_VG_OPS:-4000}"
            ;;
        drd)
            flags+=(--suppressions=valgrind/drd.supp)
            envs=(GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0)
            ops="${KTHREAD_VG_OPS:-250}"
            ;;
        memcheck)
            flags+=(--leak-check=full --errors-for-leak-kinds=definite
                --show-leak-kinds=definite,possible --suppressions=valgrind/memcheck.supp)
            ops="${KTHREAD_VG_OPS:-30000}"
            ;;
    esac
    # Under valgrind RSS measures the tool's own memory too: do not gate on it.
    soak_args=(--ops "$ops" --rounds "$rounds" --drivers "$drivers" --seed "$seed"
        --rss-slack-kib 100000000)
    echo
    echo "=== $tool ($rounds x $drivers x $ops operations)"
    start=$SECONDS
    rc=0
    # shellcheck disable=SC2086 # KTHREAD_VG_FLAGS is a list of flags
    env "${envs[@]}" valgrind "${flags[@]}" ${KTHREAD_VG_FLAGS:-} "$bin" "${soak_args[@]}" \
        >"$out" 2>&1 || rc=$?
    secs=$((SECONDS - start))
    cat "$out"
    errors=$(grep -h "ERROR SUMMARY" "$log" | tail -1 | sed 's/^==[0-9]*== //')
    echo "$errors"
    if [ "$tool" = memcheck ]; then
        grep -hE "(definitely|indirectly|possibly) lost:|still reachable:" "$log" |
            sed 's/^==[0-9]*== *//'
    else
        used=$(grep -h "used_suppression:.*valgrind/$tool.supp" "$log" |
            awk '{n += $3; k++} END {printf "%d reports matched %d of our entries", n, k}')
        echo "suppressions: $used (details: grep used_suppression $log)"
    fi
    ops_done=$(grep -ho "ops [0-9]* runs" "$out" | tail -1 | awk '{print $2}')
    if [ $rc -eq 0 ] && grep -q "^lost items: 0 " "$out"; then
        verdict=clean
    else
        verdict="FAILED (exit $rc; see $log)"
        status=1
    fi
    summary+=("$(printf '%-9s %-45s %8s ops %5d s' "$tool" "$verdict" "${ops_done:-?}" "$secs")")
done

# Thread-local destructors that call into the library after its own were
# destroyed: any invalid read or free is a failure (no suppressions).
for tool in "${tools[@]}"; do
    [ "$tool" = memcheck ] || continue
    echo
    echo "=== memcheck: tls-teardown (thread-local destructors calling the library)"
    log="$logdir/tls-teardown.log"
    rc=0
    valgrind --tool=memcheck --error-exitcode=1 --num-callers=40 --log-file="$log" \
        "$vgtarget/debug/examples/tls-teardown" || rc=$?
    grep -h "ERROR SUMMARY" "$log" | tail -1 | sed 's/^==[0-9]*== //'
    if [ $rc -eq 0 ]; then
        verdict=clean
    else
        verdict="FAILED (exit $rc; see $log)"
        status=1
    fi
    summary+=("$(printf '%-9s %-45s (20 threads)' tls-td "$verdict")")
done

echo
echo "=== summary (seed $seed; logs in $logdir)"
printf '%s\n' "${summary[@]}"
exit $status
