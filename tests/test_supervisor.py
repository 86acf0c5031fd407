"""The supervisor: `incr run`, `incr attach`, `incr restore --every` checkpoint a job on a
schedule, answer `incr checkpoint` and status queries, take a final checkpoint on SIGTERM and
SIGUSR1, keep a bounded history, and leave the job unharmed when killed at any instant.

The job is tests/programs/stepper.c with a gate before every step (GATEDIR/go<k>): the tests
open gates as checkpoints commit (counted in the supervisor's --log), so that checkpoints land
at different steps of the job, and compare its output with an uninterrupted run's."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Procs, incr, kill_and_wait_gone, line_count, ok, wait_exit, wait_until
from incr.scheduler.policy import Interval, PredumpGate, young_daly

STEPS = 12
INCR = [sys.executable, "-m", "incr"]


def reference(exe: Path, tmp: Path, procs: Procs) -> bytes:
    d = tmp / "reference"
    d.mkdir()
    p = procs.start([exe, d / "out.txt", STEPS, 0, d])
    assert p.wait(timeout=120) == 0
    return (d / "out.txt").read_bytes()


class Run:
    """A stepper job under `incr run`; its gates, its log."""

    def __init__(self, exe: Path, tmp: Path, store: Path, procs: Procs, *options: str, name: str = "run",
                 env: dict[str, str] | None = None, steps: int = STEPS) -> None:
        self.dir = tmp / name
        self.dir.mkdir()
        self.out = self.dir / "out.txt"
        self.log = self.dir / "supervisor.log"
        self.store = store
        self.sup = procs.start([*INCR, "--store", store, "run", "--log", self.log, *options, "--",
                                exe, self.out, steps, 1, self.dir], env={**os.environ, **(env or {})},
                               stderr=open(self.dir / "stderr", "wb"))  # noqa: SIM115
        wait_until(lambda: "supervising PID" in self.text(), "the supervisor to start")
        self.pid = int(re.search(r"supervising PID (\d+)", self.text()).group(1))  # type: ignore[union-attr]
        procs.track(self.pid)

    def text(self) -> str:
        try:
            return self.log.read_text()
        except FileNotFoundError:
            return ""

    def checkpoints(self) -> int:
        return len(re.findall(r"^incr: .* checkpoint [0-9a-f]{12} ", self.text(), re.M))

    def wait_checkpoints(self, n: int, timeout: float = 60) -> None:
        wait_until(lambda: self.checkpoints() >= n, f"{n} checkpoints in {self.log}", timeout)

    def open_gate(self, k: int) -> None:
        (self.dir / f"go{k}").touch()

    def open_all(self) -> None:
        for k in range(STEPS):
            self.open_gate(k)

    def kill_all(self) -> None:
        os.kill(self.sup.pid, signal.SIGKILL)
        self.sup.wait()
        kill_and_wait_gone(self.pid)


def listed(store: Path) -> list[dict[str, object]]:
    return json.loads(ok(incr(store, "list", "--json")).stdout)  # type: ignore[no-any-return]


def checkpoints(store: Path) -> list[dict[str, object]]:
    return [c for c in listed(store) if c["kind"] == "checkpoint"]


def stepping(run: Run, count: int) -> None:
    """`count` checkpoints, a gate opened after each: each lands at a later step of the job."""
    for k in range(count):
        run.wait_checkpoints(k + 1)
        run.open_gate(k)
        wait_until(lambda k=k: line_count(run.out) >= k + 1, f"step {k}")


def test_periodic_checkpoints_then_restore_at_a_time_between_two(cprog, tmp_path: Path, store: Path,
                                                                 procs: Procs) -> None:
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    run = Run(exe, tmp_path, store, procs, "--every", "1s")
    stepping(run, 5)
    run.kill_all()
    taken = checkpoints(store)
    assert len(taken) >= 5
    second, third = taken[1], taken[2]
    at = (float(second["epoch"]) + float(third["epoch"])) / 2     # type: ignore[arg-type]
    run.open_all()
    res = incr(store, "restore", "--at", f"{at:.3f}")
    assert res.returncode == 0, res.stderr
    assert f"checkpoint {str(second['id'])[:12]} of" in res.stderr, res.stderr
    assert run.out.read_bytes() == expected


def test_sigterm_takes_a_final_checkpoint_then_ends_the_job(cprog, tmp_path: Path, store: Path,
                                                            procs: Procs) -> None:
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    run = Run(exe, tmp_path, store, procs, "--every", "1h")
    run.open_gate(0)
    wait_until(lambda: line_count(run.out) >= 1, "step 0")
    os.kill(run.sup.pid, signal.SIGTERM)
    assert run.sup.wait(timeout=60) == 128 + signal.SIGTERM        # the job's status: ended by SIGTERM
    assert "(final, SIGTERM)" in run.text() and run.checkpoints() == 1
    assert len(checkpoints(store)) == 1
    run.open_all()
    res = incr(store, "restore", "--latest")
    assert res.returncode == 0, res.stderr
    assert run.out.read_bytes() == expected


def test_the_final_checkpoint_leaves_out_the_sigterm_sent_with_the_supervisors(cprog, tmp_path: Path, store: Path,
                                                                              procs: Procs) -> None:
    """Slurm sends SIGTERM to the job with its supervisor: a job that defers it to the end of a
    step has it queued when the final checkpoint freezes it.  The checkpoint leaves it out (the
    live job still ends by it): a restore continues the job rather than bring the stop back."""
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    run = Run(exe, tmp_path, store, procs, "--every", "1h", env={"STEPPER_DEFER_TERM": "1"})
    run.open_gate(0)
    wait_until(lambda: line_count(run.out) >= 1, "step 0")        # then at gate 1, SIGTERM blocked
    os.kill(run.pid, signal.SIGTERM)
    wait_until(lambda: _pending(run.pid) >> (signal.SIGTERM - 1) & 1, "the job's SIGTERM to be queued")
    os.kill(run.sup.pid, signal.SIGTERM)
    wait_until(lambda: "(final, SIGTERM)" in run.text(), "the final checkpoint")
    assert f"leaves out SIGTERM of PID {run.pid}, sent with the supervisor's" in run.text(), run.text()
    run.open_gate(1)                                  # the live job: ended by its SIGTERM after step 1
    assert run.sup.wait(timeout=60) == 128 + signal.SIGTERM
    assert line_count(run.out) == 2
    (final,) = checkpoints(store)
    run.open_all()
    res = incr(store, "restore", "--latest")
    assert res.returncode == 0 and str(final["id"])[:12] in res.stderr, res.stderr
    assert run.out.read_bytes() == expected


def _pending(pid: int) -> int:
    """The signals queued for the process (ShdPnd)."""
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("ShdPnd:")), 16)


def test_the_engines_waits_leave_the_supervised_child_to_its_parent() -> None:
    """A job `incr run` started is traced by its parent: a wait of the engine's (freezing it,
    inside a remote syscall) that finds it dead must not take its status from `incr run`."""
    from incr.engine import ptrace
    child = os.fork()
    if child == 0:
        while True:
            os.pause()
    try:
        ptrace.seize(child)
        ptrace.keep_exit_status(child)
        os.kill(child, signal.SIGKILL)
        assert ptrace.wait(child).exited
        assert ptrace.wait(child).exited, "reported again, never reaped"
        got, status = os.waitpid(child, 0)
        assert got == child and os.WTERMSIG(status) == signal.SIGKILL
    finally:
        ptrace.keep_exit_status(child, False)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


def test_a_job_killed_at_random_instants_of_its_checkpoints_gives_incr_run_its_status(
        cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    """Killed while a checkpoint traces it (seeded random instants): `incr run` ends with 137, the
    job's status, each time; not 1 because a wait of the checkpoint's took it."""
    exe = cprog("stepper")
    rng = random.Random(int(os.environ.get("INCR_SEED", "0")) or None)
    for trial in range(8):
        run = Run(exe, tmp_path, store, procs, "--every", "0.1s", "--no-predump", name=f"trial{trial}",
                  steps=10**6)
        run.open_gate(0)                # then it spins at gate 1 until killed
        run.wait_checkpoints(2)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(run.pid, signal.SIGKILL)
        assert run.sup.wait(timeout=60) == 128 + signal.SIGKILL, f"trial {trial}: {run.text()}"
        assert "ended with status 137" in run.text(), run.text()


def test_sigusr1_takes_a_final_checkpoint_and_the_job_runs_on(cprog, tmp_path: Path, store: Path,
                                                              procs: Procs) -> None:
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    run = Run(exe, tmp_path, store, procs, "--every", "1h")
    os.kill(run.sup.pid, signal.SIGUSR1)
    wait_until(lambda: "(final, SIGUSR1)" in run.text(), "the final checkpoint")
    assert run.sup.poll() is None, "the supervisor keeps supervising"
    run.open_gate(0)
    wait_until(lambda: line_count(run.out) >= 1, "the job to run on")
    status = json.loads(ok(incr(None, "attach", "--status", "--json", run.pid)).stdout)
    assert status[0]["checkpoints"] == 1 and status[0]["last_id"] == checkpoints(store)[0]["id"]
    run.open_all()
    assert run.sup.wait(timeout=60) == 0
    assert run.out.read_bytes() == expected


def test_incr_checkpoint_asks_the_supervisor_and_status_says_what_it_does(cprog, tmp_path: Path, store: Path,
                                                                        procs: Procs) -> None:
    exe = cprog("stepper")
    run = Run(exe, tmp_path, store, procs, "--every", "1h")
    info = json.loads(ok(incr(store, "checkpoint", run.pid, "--json")).stdout)
    assert f"checkpoint {info['id'][:12]} of PID {run.pid} (requested)" in run.text()
    status = json.loads(ok(incr(None, "run", "--status", "--json")).stdout)
    assert [s["pid"] for s in status] == [run.pid]
    assert status[0]["checkpoints"] == 1 and status[0]["last_id"] == info["id"] and status[0]["next_due"]
    human = ok(incr(None, "attach", "--status", run.pid)).stdout
    assert f"PID {run.pid}: supervised by incr PID {run.sup.pid}" in human and "1 checkpoints" in human
    res = incr(store, "attach", run.pid, "--every", "1s")
    assert res.returncode == 1 and "supervised already" in res.stderr and len(res.stderr.splitlines()) == 1
    other = tmp_path / "other-store"
    res = incr(other, "checkpoint", run.pid)
    assert res.returncode == 1 and "supervised by incr PID" in res.stderr and not other.exists()
    # Killed, the supervisor leaves its socket: found stale, removed; the checkpoint is taken directly.
    sock = tmp_path / "incr-runtime" / f"supervisor-{run.pid}.sock"
    assert sock.exists() and (sock.stat().st_mode & 0o777) == 0o600
    os.kill(run.sup.pid, signal.SIGKILL)
    run.sup.wait()
    second = json.loads(ok(incr(store, "checkpoint", run.pid, "--json")).stdout)
    assert not sock.exists() and second["parent"] == info["id"]
    assert json.loads(ok(incr(None, "run", "--status", "--json")).stdout) == []


def test_supervisor_killed_mid_checkpoint_leaves_the_job_unharmed(cprog, tmp_path: Path, store: Path,
                                                                  procs: Procs) -> None:
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    # At a known instant first: inside the freeze of its first checkpoint.
    run = Run(exe, tmp_path, store, procs, "--every", "1s", env={"INCR_FAULT": "frozen"})
    assert run.sup.wait(timeout=60) == -signal.SIGKILL
    assert checkpoints(store) == [] if store.exists() else True
    run.open_gate(0)
    wait_until(lambda: line_count(run.out) >= 1, "the job to run on after its supervisor died frozen")
    # Then at random instants of the checkpoints of a supervisor attached again, each trial.
    rng = random.Random(int(os.environ.get("INCR_SEED", "0")) or None)
    for trial in range(3):
        sup = procs.start([*INCR, "--store", store, "attach", run.pid, "--every", "1s", "--log", run.log])
        before = run.checkpoints()
        wait_until(lambda before=before: run.checkpoints() > before, f"trial {trial}: a checkpoint")
        time.sleep(rng.uniform(0.0, 1.2))          # somewhere in the next checkpoint (about 1 s later)
        os.kill(sup.pid, signal.SIGKILL)
        sup.wait()
        assert _state(run.pid) not in ("t", "T"), f"trial {trial}: the job was left stopped"
        run.open_gate(trial + 1)
        wait_until(lambda trial=trial: line_count(run.out) >= trial + 2, f"trial {trial}: the job to run on")
    run.open_all()
    assert os.WEXITSTATUS(wait_exit(run.pid)) == 0
    assert run.out.read_bytes() == expected
    newest = checkpoints(store)[-1]
    res = incr(store, "restore", "--latest")
    assert res.returncode == 0 and str(newest["id"])[:12] in res.stderr, res.stderr
    assert run.out.read_bytes() == expected


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_keep_last_3_over_10_checkpoints(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    run = Run(exe, tmp_path, store, procs, "--every", "1s", "--keep-last", "3", "--no-predump")
    stepping(run, 10)
    run.kill_all()
    assert run.checkpoints() >= 10
    kept = checkpoints(store)
    assert len(kept) == 3
    freed = sum(_bytes(m.group(1)) for m in re.finditer(r"forgot \d+, ([0-9.]+ \w+) freed", run.text()))
    added = sum(_bytes(m.group(1)) for m in re.finditer(r"downtime [0-9.]+ ms, ([0-9.]+ \w+) added", run.text()))
    assert freed > 0 and _store_bytes(store) < added
    run.open_all()
    for c in kept:
        res = incr(store, "restore", "--id", str(c["id"]))
        assert res.returncode == 0, res.stderr
        assert run.out.read_bytes() == expected


def _bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]


def _store_bytes(store: Path) -> int:
    return sum(f.stat().st_size for f in (store / "packs").rglob("*") if f.is_file())


def test_restore_with_every_supervises_again_and_records_the_restored_checkpoint_as_parent(
        cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("stepper")
    expected = reference(exe, tmp_path, procs)
    run = Run(exe, tmp_path, store, procs, "--every", "1s")
    stepping(run, 3)
    run.kill_all()
    first = checkpoints(store)
    second = first[1]                         # older than the newest: the history branches there
    log2 = run.dir / "after-restore.log"
    sup = procs.start([*INCR, "--store", store, "restore", "--id", second["id"], "--every", "1s", "--log", log2])
    wait_until(lambda: log2.exists() and "supervising PID" in log2.read_text(), "the restored job to be supervised")
    wait_until(lambda: len(re.findall(r" checkpoint [0-9a-f]{12} ", log2.read_text())) >= 2, "2 new checkpoints")
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    kill_and_wait_gone(run.pid)
    by_id = {str(c["id"]): c for c in listed(store)}
    new = [c for c in checkpoints(store) if c["id"] not in {x["id"] for x in first}]
    assert len(new) >= 2
    assert _checkpoint_ancestor(by_id, new[0]) == second["id"], "the restored checkpoint is the new one's parent"
    assert _checkpoint_ancestor(by_id, new[1]) == new[0]["id"]
    run.open_all()
    res = incr(store, "restore", "--latest")
    assert res.returncode == 0, res.stderr
    assert run.out.read_bytes() == expected


def _checkpoint_ancestor(by_id: dict[str, dict[str, object]], c: dict[str, object]) -> object:
    """The nearest checkpoint up `c`'s parent chain (pre-dumps between are passed)."""
    parent = by_id.get(str(c["parent"]))
    while parent is not None and parent["kind"] != "checkpoint":
        parent = by_id.get(str(parent["parent"]))
    return parent["id"] if parent else c["parent"]


def test_job_status_stdio_environment_and_cwd_pass_through(tmp_path: Path, store: Path) -> None:
    script = 'echo out; echo err >&2; pwd; echo "$INCR_TEST_VAR"; ls /proc/self/fd | wc -l; exit 7'
    res = subprocess.run([*INCR, "--store", str(store), "run", "--every", "1h", "--", "sh", "-c", script],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "INCR_TEST_VAR": "v1"},
                         timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 7
    lines = res.stdout.splitlines()
    assert lines[:3] == ["out", str(tmp_path), "v1"]
    assert int(lines[3]) == 4, "0, 1, 2 and ls's own directory: no descriptor of incr's"
    assert "err\n" in res.stderr and "Traceback" not in res.stderr
    res = incr(store, "run", "--every", "1h", "--", "sh", "-c", "kill -9 $$")
    assert res.returncode == 128 + 9
    res = incr(store, "run", "--", "/nonexistent/program")
    assert res.returncode == 127 and "cannot run /nonexistent/program" in res.stderr


def test_ctrl_c_reaches_the_job_and_incr_exits_with_its_status(cprog, tmp_path: Path, store: Path,
                                                               procs: Procs) -> None:
    run = Run(cprog("stepper"), tmp_path, store, procs, "--every", "1h")
    os.killpg(run.sup.pid, signal.SIGINT)       # what the terminal does: the whole foreground group
    assert run.sup.wait(timeout=60) == 128 + signal.SIGINT
    stderr = (run.dir / "stderr").read_text()
    assert "Traceback" not in stderr


def test_every_auto_follows_the_measured_cost(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    run = Run(cprog("stepper"), tmp_path, store, procs, "--every", "auto", "--mtbf", "4s", "--no-predump")
    run.wait_checkpoints(2)
    costs = [float(c) for c in re.findall(r"total ([0-9.]+) s; next every", run.text())]
    intervals = [float(i) for i in re.findall(r"next every ([0-9.]+) s \(auto", run.text())]
    assert len(costs) >= 2 and len(intervals) == len(costs)
    for cost, interval in zip(costs, intervals, strict=True):
        assert interval == pytest.approx(max(1.0, (2 * 4 * max(cost, 1e-3)) ** 0.5), abs=0.06)


def test_young_daly_and_when_predump_rounds_pay() -> None:
    assert young_daly(3600, 2.0) == pytest.approx(120.0)
    i = Interval.parse("auto", "1h")
    i.measured(8.0)
    assert i.seconds() == pytest.approx(240.0)
    assert Interval.parse("90s", None).seconds() == 90.0
    streaming = PredumpGate()
    streaming.after_checkpoint(30000)                # an interval's worth without rounds
    assert streaming.after_round(10000, 100000) == "" and streaming.after_round(10000, 100000) == ""
    assert streaming.after_checkpoint(10000) == "" and streaming.enabled
    rewriting = PredumpGate()
    rewriting.after_checkpoint(30000)
    assert "as many as a whole interval" in rewriting.after_round(29000, 100000) and not rewriting.enabled
    idle = PredumpGate()
    idle.after_checkpoint(10)
    assert "only 3 pages" in idle.after_round(3, 100000) and not idle.enabled
    for _ in range(1 + 10):                        # the one after the round, then 10 without
        idle.after_checkpoint(10)
    assert idle.enabled, "tried again later"


@pytest.mark.parametrize("args,code,words", [
    (["run", "--every", "0", "--", "true"], 2, "--every must be longer than 0"),
    (["run", "--every", "banana", "--", "true"], 2, "cannot read duration 'banana'"),
    (["run", "--keep-last", "0", "--", "true"], 2, "--keep-last: must be at least 1"),
    (["run", "--final-deadline", "inf", "--", "true"], 2, "--final-deadline: must be a finite number"),
    (["run", "--every", "auto", "--", "true"], 2, "--every auto needs --mtbf"),
    (["run", "--every", "1s"], 2, "no command to run"),
    (["attach", "999999999", "--every", "1s"], 2, "no process 999999999"),
    (["restore", "--every", "1s", "--detach"], 2, "cannot go with --detach"),
])
def test_bad_input_is_one_line_and_changes_nothing(store: Path, args: list[str], code: int, words: str) -> None:
    res = incr(store, *args)
    assert res.returncode == code, res.stderr
    assert words in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr
    assert not store.exists()
