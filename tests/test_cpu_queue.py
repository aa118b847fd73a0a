"""scripts/cpu_queue.sh: the CPU's queue runs its stages in order (the grid's seed 0, the study
with the grid's cells shared in, the grid's other seeds with the study's shared back, Swimmer,
the eps sweep with its cells at each task's own eps copied from MABCQ's; `mabcq acting` after
each) and stops the queue with a stage's exit code; checked with a stand-in interpreter that
records its calls."""

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "cpu_queue.sh"
FAKE = """#!/usr/bin/env bash
echo "$PWD|$*" >> "$CALLS"
if [[ "$*" == *"-m mabcq reproduce"* && "$*" != *--stop-after* ]]; then  # in overtime
  exit "${OVERTIME_EXIT:-0}"
fi
case "$*" in
  *share_cells.py*--same-learner*) exit "${SAME_LEARNER_EXIT:-0}" ;;
  *share_cells.py*) exit 0 ;;
  *--eps-sweep*--stop-after\\ 1s*) exit "${SWEEP_REQUEST_EXIT:-3}" ;;
  *"-m mabcq acting "*) exit "${ACTING_EXIT:-0}" ;;
  *--stop-after\\ 1s*) out="$(echo "$*" | sed 's/.*--out \\([^ ]*\\).*/\\1/')"
     mkdir -p "$out" && echo '{}' > "$out/grid.json"; exit 3 ;;
  *results/study*) exit "${STUDY_EXIT:-0}" ;;
  *--seeds\\ 0\\ *) exit "${SEED0_EXIT:-0}" ;;
  *) exit "${GRID_EXIT:-0}" ;;
esac
"""


@pytest.fixture
def queue(tmp_path):
    """A clean pinned worktree, a main checkout and a stand-in python: run(env) -> (exit code,
    the calls as (where, what))."""
    pin, main = tmp_path / "grid", tmp_path / "main"
    (pin / "src").mkdir(parents=True)
    main.mkdir()
    (pin / "src" / "code.py").write_text("x = 1\n")
    git = ["git", "-C", str(pin), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "pin"], check=True)
    fake = tmp_path / "python"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    soon = (dt.datetime.now() + dt.timedelta(hours=1)).strftime("%H:%M")

    def run(until=soon, **env):
        result = subprocess.run(["bash", str(SCRIPT), until, str(pin)], cwd=main,
                                capture_output=True, text=True,
                                env={**{key: value for key, value in os.environ.items()
                                        if key != "EARLIER_PINS"},  # the script's default
                                     "PYTHON": str(fake), "CALLS": str(calls),
                                     "MAIN": str(main), "LOG": str(tmp_path / "log"), **env})
        made = [line.split("|", 1) for line in calls.read_text().splitlines()] \
            if calls.exists() else []
        calls.unlink(missing_ok=True)
        return result.returncode, [(Path(where).name, what) for where, what in made]

    return run, pin, main


def step(what: str) -> str:
    """A call's kind: which stage, which copy, or which acting diagnostic."""
    if "-m mabcq acting " in what:
        return "acting " + what.split("-m mabcq acting ")[1].split()[0].split("/results/")[1]
    if "share_cells.py" in what:
        source, dest = what.split("share_cells.py ")[1].split()[:2]
        return f"share {source} -> {dest}" + (" (named methods)" if "--methods" in what else "") \
            + (" (same learner)" if "--same-learner" in what else "")
    out = "study" if "results/study" in what else "paper"
    seeds = what.split("--seeds ")[1].split()[0]
    extra = " swimmer" if "--tasks swimmer-2x1" in what else ""
    extra += " eps sweep" if "--eps-sweep" in what else ""
    return f"{out}{extra} seeds {seeds}" + (" (record only)" if "--stop-after 1s" in what else "")


def test_the_stages_run_in_the_queue_order(queue):
    run, pin, main = queue
    code, calls = run()
    assert code == 0
    assert [step(what) for _, what in calls] == [*BEFORE_SWEEP, *EPS_STAGE]
    acting = [(where, what) for where, what in calls if "-m mabcq acting" in what]
    assert all(where == "main" and "--no-progress" in what for where, what in acting)
    # each looks for copied cells' policies in the other
    assert [what.split("--runs-from ")[1].split()[0].rsplit("/", 1)[1] for _, what in acting] \
        == ["study", "paper", "paper", "study", "study", "study"]
    reproduce = [(where, what) for where, what in calls if "reproduce" in what]
    assert all(where == "grid" and "--preset paper" in what and "--workers 2" in what
               for where, what in reproduce)  # the pinned worktree's code trains
    commit = subprocess.run(["git", "-C", str(pin), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    assert all(f"--commit {commit}" in what for _, what in calls if "share_cells" in what)
    again, calls = run()  # both grid.json files are there now: only the sweep's request again
    assert again == 0
    assert [step(what) for _, what in calls if "(record only)" in step(what)] == EPS_STAGE[:1]


RECORDS = ["paper seeds 0,1,2,3,4 (record only)", "study seeds 0,1,2,3,4 (record only)"]
BEFORE_SWEEP = [*RECORDS, "paper seeds 0", "acting paper",
                "share results/paper -> results/study (named methods)", "study seeds 0,1",
                "acting study", "study seeds 0,1,2,3,4", "acting study",
                "share results/study -> results/paper", "paper seeds 0,1,2,3,4", "acting paper",
                "paper swimmer seeds 0,1,2,3,4", "acting paper"]
# the sweep's request recorded, its cells at each task's own eps copied from MABCQ's, then run
EPS_STAGE = ["paper eps sweep seeds 0,1,2,3,4 (record only)",
             "share results/paper -> results/paper (same learner)",
             "share results/study -> results/paper (same learner)",
             "paper eps sweep seeds 0,1,2,3,4", "acting paper"]


def flag(calls, name: str, kind: str) -> list[str | None]:
    """The value of NAME in each call of KIND (reproduce, share_cells); None where absent."""
    return [what.split(f"{name} ")[1].split()[0] if f"{name} " in what else None
            for _, what in calls if kind in what]


def test_earlier_pins_are_allowed_and_shared_but_never_the_pin_itself(queue):
    run, pin, main = queue
    commit = subprocess.run(["git", "-C", str(pin), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    code, calls = run(EARLIER_PINS=f"{'a' * 40},bbbbbbb")
    assert code == 0
    allowed = flag(calls, "--allow-commits", "reproduce")
    assert len(allowed) == 9 and set(allowed) == {f"{'a' * 40},bbbbbbb"}
    assert set(flag(calls, "--commit", "share_cells")) == {f"{commit},{'a' * 40},bbbbbbb"}
    (main / "results" / "paper" / "grid.json").unlink()  # recorded again: a call more
    code, calls = run(EARLIER_PINS=f"{commit[:9]},bbbbbbb")  # the pin among the earlier pins
    assert code == 0
    allowed = flag(calls, "--allow-commits", "reproduce")
    assert len(allowed) == 8 and set(allowed) == {"bbbbbbb"}
    assert set(flag(calls, "--commit", "share_cells")) == {f"{commit},bbbbbbb"}
    code, calls = run(EARLIER_PINS=commit[:7])  # the worktree still at the only pin
    assert code == 0 and set(flag(calls, "--allow-commits", "reproduce")) == {None}
    assert set(flag(calls, "--commit", "share_cells")) == {commit}
    code, calls = run(EARLIER_PINS="")  # none
    assert code == 0 and set(flag(calls, "--allow-commits", "reproduce")) == {None}
    assert set(flag(calls, "--commit", "share_cells")) == {commit}
    # upper case, repeated, spaced and glob-like entries: lower-cased, once each, never globbed
    (main / "a-file").write_text("")
    code, calls = run(EARLIER_PINS=f"{commit.upper()}, BBBBBBB,bbbbbbb,*")
    assert code == 0 and set(flag(calls, "--allow-commits", "reproduce")) == {"bbbbbbb,*"}
    code, calls = run()  # unset: the earlier pins, aa17b47 and 3e774ae
    earlier = ("aa17b47732a2c2d788f20ba78831efab0647adb1,"
               "3e774ae899244471ee9f3684c22ea04a9d7e9d7d")
    assert code == 0 and set(flag(calls, "--allow-commits", "reproduce")) == {earlier}
    assert set(flag(calls, "--commit", "share_cells")) == {f"{commit},{earlier}"}


@pytest.mark.parametrize("env, code, ran", [
    ({"SEED0_EXIT": "3"}, 3, [*RECORDS, "paper seeds 0", "acting paper"]),
    ({"STUDY_EXIT": "3"}, 3, [*RECORDS, "paper seeds 0", "acting paper",
                              "share results/paper -> results/study (named methods)",
                              "study seeds 0,1", "acting study"]),
    # a failure keeps its own code; the acting diagnostic's own failure stops nothing
    ({"SEED0_EXIT": "5"}, 5, [*RECORDS, "paper seeds 0", "acting paper"]),
    ({"ACTING_EXIT": "1"}, 0, [*BEFORE_SWEEP, *EPS_STAGE]),
    # the sweep's copies: one that differs (exit 1) or fails, or a failed request, stops it
    ({"SAME_LEARNER_EXIT": "1"}, 1, [*BEFORE_SWEEP, *EPS_STAGE[:2]]),
    ({"SWEEP_REQUEST_EXIT": "2"}, 2, [*BEFORE_SWEEP, *EPS_STAGE[:1]]),
])
def test_a_stage_stopped_or_failed_stops_the_queue(queue, env, code, ran):
    run = queue[0]
    got, calls = run(**env)
    assert got == code and [step(what) for _, what in calls] == ran


def test_a_deadline_not_given_as_a_clock_time_is_refused(queue):
    code, calls = queue[0](until="tomorrow")
    assert code == 2 and calls == []


def test_a_deadline_that_has_come_trains_nothing(queue):
    run = queue[0]
    in_20_s = (dt.datetime.now() + dt.timedelta(seconds=20)).strftime("%H:%M:%S")
    code, calls = run(until=in_20_s)  # under a minute left: no stage starts
    assert code == 3 and [step(what) for _, what in calls] == RECORDS  # which train nothing


def test_a_pin_with_local_changes_is_refused(queue):
    run, pin, _ = queue
    (pin / "src" / "code.py").write_text("x = 2\n")
    code, calls = run()
    assert code == 2 and calls == []


@pytest.fixture
def overtime(queue, tmp_path):
    """The queue with a stand-in `timeout` on PATH that records its limit, then runs the command:
    run(overtime_until, until=..., **env) -> (exit code, calls, the limits given)."""
    run = queue[0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "timeout").write_text('#!/usr/bin/env bash\necho "$PWD|timeout $1" >> "$CALLS"\n'
                                     'shift\nexec "$@"\n')
    (bin_dir / "timeout").chmod(0o755)

    def run_overtime(overtime_until, **env):
        code, calls = run(OVERTIME_UNTIL=overtime_until,
                          PATH=f"{bin_dir}:{os.environ['PATH']}", **env)
        limits = [int(what.split()[1]) for _, what in calls if what.startswith("timeout ")]
        return code, [call for call in calls if not call[1].startswith("timeout ")], limits
    return run_overtime


def clock(**delta) -> str:
    return (dt.datetime.now() + dt.timedelta(**delta)).strftime("%H:%M")


def test_overtime_goes_on_with_the_stopped_stage_until_its_time(overtime):
    code, calls, limits = overtime(clock(hours=2), SEED0_EXIT="3", OVERTIME_EXIT="124")
    assert code == 3  # the overtime ended with cells left: commit, call again
    assert [step(what) for _, what in calls] == [*RECORDS, "paper seeds 0", "acting paper",
                                                 "paper seeds 0"]
    stopped, again = [what for _, what in calls if "reproduce" in what][-2:]
    assert "--stop-after" in stopped and "--stop-after" not in again  # cells start regardless
    assert again == stopped.split(" --stop-after")[0]  # the same stage, the same flags
    # `timeout` bounds the overtime (about an hour past the deadline here) and the acting call
    assert limits[0] == 600 and 3500 <= limits[1] <= 7200 and len(limits) == 2


def test_a_stage_done_in_overtime_lets_the_queue_go_on(overtime):
    code, calls, _ = overtime(clock(hours=2), SEED0_EXIT="3")  # overtime's call exits 0
    assert code == 0
    assert [step(what) for _, what in calls] == [*RECORDS, "paper seeds 0", "acting paper",
                                                 "paper seeds 0", *BEFORE_SWEEP[4:], *EPS_STAGE]


def test_overtime_after_a_deadline_that_has_come(overtime):
    in_20_s = (dt.datetime.now() + dt.timedelta(seconds=20)).strftime("%H:%M:%S")
    code, calls, limits = overtime(clock(hours=1), until=in_20_s, OVERTIME_EXIT="124")
    assert code == 3 and [step(what) for _, what in calls] == [*RECORDS, "paper seeds 0"]
    assert len(limits) == 1 and limits[0] >= 60
    # stages already done when the deadline comes: the queue goes on in overtime (no acting)
    code, calls, limits = overtime(clock(hours=1), until=in_20_s)
    trained = [step(what) for _, what in calls if "(record only)" not in step(what)]
    assert code == 0 and trained == [step for step in [*BEFORE_SWEEP, *EPS_STAGE]
                                     if "record only" not in step and "acting" not in step]
    assert all("--stop-after" not in what for _, what in calls
               if "reproduce" in what and "(record only)" not in step(what))
    assert len(limits) == 6  # one bound per stage: the queue's six


def test_no_overtime_when_the_queue_is_done_or_a_stage_fails(overtime):
    code, calls, limits = overtime(clock(hours=2))
    assert code == 0 and [step(what) for _, what in calls] == [*BEFORE_SWEEP, *EPS_STAGE]
    assert set(limits) == {600}  # only the acting calls' own bound
    code, calls, _ = overtime(clock(hours=2), SEED0_EXIT="5")  # requests recorded already
    assert code == 5 and [step(what) for _, what in calls] == ["paper seeds 0", "acting paper"]


@pytest.mark.parametrize("overtime_until", ["soon", "25:00", "past deadline"])
def test_an_overtime_not_after_the_deadline_is_refused(overtime, overtime_until):
    if overtime_until == "past deadline":
        overtime_until = clock(minutes=30)  # before the fixture's deadline, an hour from now
    code, calls, limits = overtime(overtime_until)
    assert code == 2 and calls == [] and limits == []
