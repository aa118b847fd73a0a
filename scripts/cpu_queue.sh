#!/usr/bin/env bash
# The CPU's queue, in its order, from the pinned worktree, until a deadline: the paper grid's
# seed 0 (every task and method: the first complete picture), then issue 19's study
# (docs/study.md; every task's seed 1 before the seeds 2-4, so that the study's answer, which
# waits for two seeds of every design cell, comes first), then the grid's seeds 1-4, then
# Swimmer (Figure 4) and the eps sweep (Figure 5). Each stage resumes where the last call stopped
# (finished cells skipped, a cell in flight from its checkpoint); cells that both runs ask for are
# trained once and copied with scripts/share_cells.py. After each stage, `mabcq acting` re-runs
# the new cells' final evaluations with parts of the policy switched off (acting.csv, main's
# code). Run from the main checkout:
#   bash scripts/cpu_queue.sh HH:MM [PINNED_WORKTREE]      (default worktree: ../grid)
# The grids keep the cells of earlier pins (EARLIER_PINS, below): each was moved from only once a
# smoke grid of it and of the next pin were bitwise equal (docs/reproduce.md, "The pins so far").
# Exit 0: the whole queue is done; 3: stopped at the deadline (commit results/, call again);
# anything else: a stage failed (its output is in the log). Output: $LOG (default
# /tmp/cpu_queue.log) and the terminal; for a run that outlives the terminal, start it with
# `setsid nohup bash scripts/cpu_queue.sh HH:MM > /dev/null 2>&1 &` (a closed terminal would
# otherwise end it through its tee).
# OVERTIME_UNTIL=HH:MM (optional, later than the deadline): from the deadline on, the queue
# goes on until then instead of leaving both cores idle, its stages with no deadline (cells
# start whether they fit or not; no acting); at that time `timeout` kills the cells in flight,
# each keeping its last checkpoint (one per evaluation), which the next call on this machine
# resumes, bitwise as if never stopped (a new machine trains them from the start). Commit at the
# deadline as usual (the log says "overtime"); what finishes later is the next session's to
# commit. Exit 3 when the overtime ends with cells left, 0 when the queue got done.
set -uo pipefail
until_time="${1:?usage: cpu_queue.sh HH:MM [PINNED_WORKTREE]}"
grid_tree="$(cd "${2:-../grid}" && pwd)" || exit 2
main_tree="$(pwd)"
log="${LOG:-/tmp/cpu_queue.log}"
commit="$(git -C "$grid_tree" rev-parse HEAD)" || exit 2
next_time() {  # WHAT HH:MM[:SS]: the next such clock time, in epoch seconds (today or tomorrow)
    [[ "$2" =~ ^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$ ]] || {
        echo "cpu_queue: error: $2: give $1 as HH:MM or HH:MM:SS" >&2; return 2; }
    local at
    at="$(date -d "$2" +%s)" || return 2
    [ "$at" -gt "$(date +%s)" ] || at="$(date -d "tomorrow $2" +%s)"
    echo "$at"
}
# One absolute deadline for every stage (a stage's own HH:MM would mean tomorrow once passed).
deadline="$(next_time "the deadline" "$until_time")" || exit 2
overtime_end="" overtime_s=""  # overtime_s: set only inside overtime(), read by reproduce()
if [ -n "${OVERTIME_UNTIL:-}" ]; then
    overtime_end="$(next_time OVERTIME_UNTIL "$OVERTIME_UNTIL")" || exit 2
    [ "$overtime_end" -gt "$deadline" ] || {
        echo "cpu_queue: error: OVERTIME_UNTIL=$OVERTIME_UNTIL is not after the deadline" \
            "$until_time" >&2; exit 2; }
fi
if [ -n "$(git -C "$grid_tree" status --porcelain -- src pyproject.toml)" ]; then
    echo "cpu_queue: error: $grid_tree has local changes; the grid runs from a clean pin" >&2
    exit 2
fi
export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_multi_thread_eigen=false" OMP_NUM_THREADS=1
# On any CPU with AVX-512 (measured on the Intel Xeon kind), XLA's platform-dependent math
# parts the rollouts from the AVX2 AMD EPYC kind that ran the grid's first cells (Hopper's
# dataset: mean return 407.27 on Intel, 407.51 on AMD). With these flags the Intel kind built
# the AMD kind's datasets exactly; training still rounds differently (docs/reproduce.md, "CPU
# machines of two kinds"). On an AVX2-only CPU they are left out: that kind runs as before.
if grep -q -w avx512f /proc/cpuinfo 2>/dev/null; then
    XLA_FLAGS="$XLA_FLAGS --xla_cpu_max_isa=AVX2 --xla_cpu_enable_platform_dependent_math=false"
fi
python="${PYTHON:-$main_tree/.venv/bin/python}"  # the venv both checkouts' code runs in
# Earlier pins, comma-separated, whose cells stay in the grids beside the pin's own (reproduce's
# --allow-commits) and may be copied between them (share_cells' --commit); the pin itself is
# left out, so the list also holds while the worktree is still at one of them.
pins="${EARLIER_PINS-aa17b47732a2c2d788f20ba78831efab0647adb1,3e774ae899244471ee9f3684c22ea04a9d7e9d7d}"
IFS=', ' read -ra pins <<< "${pins,,}"  # lower case, as git writes commits; never globbed
earlier=()
for pin in "${pins[@]}"; do
    [[ "$commit" == "$pin"* || " ${earlier[*]} " == *" $pin "* ]] || earlier+=("$pin")
done
allow=()
[ "${#earlier[@]}" -eq 0 ] || allow=(--allow-commits "$(IFS=,; echo "${earlier[*]}")")
commits="$(IFS=,; echo "$commit${earlier[*]:+,${earlier[*]}}")"
study_flags=(--tasks hopper-3x1,walker2d-2x3,halfcheetah-2x3
             --methods mabcq,mabcq-vdterm1,mabcq-tnclip,mabcq-tnnorm,mabcq-relguard,mabcq-combined,bcq)

say() { echo "$(date +%T) cpu_queue: $*" | tee -a "$log"; }
reproduce() {  # OUT, then reproduce's flags; returns its exit code. In overtime it runs under
    # `timeout`, whose signal reaches the workers too (its whole process group).
    local out="$1" wrap=(); shift
    [ -z "$overtime_s" ] || wrap=(timeout "$overtime_s")
    (cd "$grid_tree" && PYTHONPATH="$grid_tree/src" exec "${wrap[@]}" "$python" \
        -m mabcq reproduce \
        --preset paper --out "$main_tree/$out" --data-root "$main_tree/runs/data" --workers 2 \
        --no-progress "${allow[@]}" "$@") 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}
share() {  # SOURCE DEST [--methods ...]
    PYTHONPATH="$main_tree/src" "$python" "$main_tree/scripts/share_cells.py" "$1" "$2" \
        --commit "$commits" "${@:3}" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}
stage() {  # NAME, then reproduce's arguments: 0 done, else stop the queue with that code
    local left=$((deadline - $(date +%s))) status=3
    if [ "$left" -ge 60 ]; then
        say "$1 (pin ${commit:0:7}, ${left} s left)"
        reproduce "${@:2}" --stop-after "${left}s"
        status=$?
        say "$1: exit $status"
        acting "$2" "$([ "$2" = results/paper ] && echo results/study || echo results/paper)"
    else
        say "$1: the deadline has come"
    fi
    [ "$status" = 3 ] && [ -n "$overtime_end" ] || return "$status"
    overtime "$@"
}
overtime() {  # NAME, then reproduce's arguments: the stage with no deadline until
    # OVERTIME_UNTIL (see the top): 0 when it got done (the queue goes on), 3 when time is up
    local overtime_s=$((overtime_end - $(date +%s)))
    [ "$overtime_s" -ge 60 ] || return 3
    say "overtime: commit results/ now; $1 goes on for up to ${overtime_s} s"
    reproduce "${@:2}"
    local status=$?
    say "$1 in overtime: exit $status"
    case "$status" in
        124) say "overtime ended at $OVERTIME_UNTIL; the cells in flight kept their last" \
                 "checkpoint"; return 3 ;;
        *) return "$status" ;;
    esac
}
acting() {  # OUT OTHER: `mabcq acting` on OUT's new cells (policies in OUT's runs/, or OTHER's
    # for cells copied in), with main's code: a diagnostic of the cells' policies, never the
    # grid's numbers; at most ACTING_S seconds (a stopped call keeps every cell it finished);
    # its exit code is logged, it never stops the queue
    (cd "$main_tree" && PYTHONPATH="$main_tree/src" timeout "${ACTING_S:-600}" "$python" \
        -m mabcq acting "$main_tree/$1" --runs-from "$main_tree/$2" --no-progress) 2>&1 |
        tee -a "$log"
    say "acting $1: exit ${PIPESTATUS[0]}"
}

request() {  # OUT, reproduce's flags: add them to OUT/grid.json's request, train nothing
    reproduce "$@" --stop-after 1s > /dev/null  # no cell fits a 1 s deadline
    local status=$?
    [ "$status" = 3 ] || [ "$status" = 0 ] || {
        say "recording the request of $*: exit $status (see $log)"; exit "$status"; }
}
record() {  # the same, once: grid.json keeps the union of every call's request
    [ -f "$1/grid.json" ] || request "$@"
}

# Both requests recorded first: a copy between the two grids is checked against them, and
# covers every seed they ask for (stage 1 alone would record seed 0 only).
record results/paper --seeds 0,1,2,3,4
record results/study "${study_flags[@]}" --seeds 0,1,2,3,4
stage "paper grid, seed 0" results/paper --seeds 0 || exit $?
share results/paper results/study --methods mabcq,mabcq-no-tn,mabcq-no-vd,bcq || exit $?
stage "study (docs/study.md), seeds 0-1: two of every design cell" results/study \
    "${study_flags[@]}" --seeds 0,1 || exit $?
stage "study (docs/study.md)" results/study "${study_flags[@]}" --seeds 0,1,2,3,4 || exit $?
share results/study results/paper || exit $?
stage "paper grid, seeds 0-4" results/paper --seeds 0,1,2,3,4 || exit $?
stage "Swimmer 2x1 on low-quality data (Figure 4)" results/paper --tasks swimmer-2x1 \
    --seeds 0,1,2,3,4 || exit $?
# The sweep's cell at a task's own eps (Table 8) is MABCQ's cell, bitwise: the request recorded,
# then MABCQ's cells copied under that name (share_cells.py --same-learner), not trained again:
# the grid's own, else the study's (HalfCheetah's seeds 1-4: the grid's are the lent GPU's group
# cells, another kind), so 20 of the sweep's 120 cells.
request results/paper --eps-sweep --methods mabcq --seeds 0,1,2,3,4
share results/paper results/paper --same-learner || exit $?
share results/study results/paper --same-learner || exit $?
stage "the eps sweep (Figure 5)" results/paper --eps-sweep --methods mabcq --seeds 0,1,2,3,4 \
    || exit $?
# Figure 6 (CQL vs MACQL on medium-replay data) is not queued: its plan on this CPU is ~422 h of
# cell time (30 cells at the default CPU estimate, none measured), to be sized first (issue 18).
say "the queue is done: main grid, study, Swimmer, eps sweep; Figure 6 is not queued (issue 18)"
