"""The crash model, soaked: `incr checkpoint` and `incr predump` SIGKILLed at
seeded random instants, each time followed by a checkpoint that commits and
is restored; the restored job's memory must be exactly what an uninterrupted
run has at the same iteration (tests/programs/xorjob.c: a page a checkpoint
missed keeps an old content for good).

Each trial: a committed checkpoint (the tracker's base), a command killed
at a random instant of its run, a committed (incremental) checkpoint, the
job killed and that checkpoint restored; the restored job reports its
iteration and digest, compared with a reference computation; and the store
verifies, every byte read (`incr verify --read-data`).  Then all but the two
newest checkpoints are forgotten and pruned, under the running tracker.  The restored
job is the next trial's job.  Between the kill and the next command the job
must be running, untraced, not stopped, with nothing pending it did not
have.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from softdirty_vm import IN_GUEST, run_in_guest
from xorjob import Job, assert_memory_exact

from conftest import Procs, incr, kill_and_wait_gone, ok, read_pid, run_killed, verify_here
from incr import dirty, maintenance
from incr.pagestore import gc

TRIALS = int(os.environ.get("INCR_SOAK_TRIALS", "50"))
SEED = 20261201
PAGES = int(os.environ.get("INCR_SOAK_PAGES", "16384"))     # 64 MiB, a few % written between two commands
KILLED_COMMANDS = (
    ("checkpoint",),
    ("checkpoint", "--no-precopy"),
    ("predump",),
    ("checkpoint", "--kill"),
)


def job_state(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def assert_unharmed(pid: int, why: str) -> None:
    status = job_state(pid)
    assert status["TracerPid"] == "0", (why, status["TracerPid"])
    assert status["State"][0] in "RS", (why, status["State"])
    assert int(status["SigPnd"], 16) == 0 and int(status["ShdPnd"], 16) == 0, (why, status["SigPnd"],
                                                                                 status["ShdPnd"])


def alive(pid: int) -> bool:
    try:
        return job_state(pid)["State"][0] not in "ZX"
    except FileNotFoundError:
        return False


def timed(store: Path, *args: object) -> float:
    t0 = time.perf_counter()
    ok(incr(store, *args))
    return time.perf_counter() - t0


def _trackers() -> list[object]:
    features = dirty.probe()
    soft_dirty = [] if features.soft_dirty else [pytest.mark.skip(
        reason=f"soft-dirty unavailable on this kernel: {features.soft_dirty_why}"
        + ("" if IN_GUEST else "; see test_soft_dirty_soak_in_a_vm"))]
    return [pytest.param("uffd-wp", id="uffd-wp"), pytest.param("soft-dirty", marks=soft_dirty, id="soft-dirty")]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("tracker", _trackers())
def test_commands_killed_at_random_instants_never_make_a_wrong_checkpoint(cprog, tmp_path: Path, store: Path,
                                                                           procs: Procs, tracker: str) -> None:
    exe = cprog("xorjob")
    report, ready = tmp_path / "report", tmp_path / "ready"
    procs.start([exe, report, ready, PAGES])
    job = Job(exe, report, procs.track(read_pid(ready)), PAGES)
    rng = random.Random(SEED)
    for _ in range(2):                       # the first, full pass, and one incremental to warm up
        timed(store, "checkpoint", job.pid, "--tracker", tracker)
    # Each command's kill instant is drawn over its own duration (a predump is shorter than a
    # checkpoint: one span for all had the guest's few trials land after the end too often).
    spans = {cmd: timed(store, *(a for a in cmd if a != "--kill"), job.pid, "--tracker", tracker)
             for cmd in KILLED_COMMANDS}
    killed_mid_run = 0
    for trial in range(TRIALS):
        base = json.loads(ok(incr(store, "checkpoint", job.pid, "--json", "--tracker", tracker)).stdout)
        command = rng.choice(KILLED_COMMANDS)
        args = (*command, "--tracker", tracker)
        delay = rng.uniform(0.0, spans[command])
        what = f"trial {trial}: {' '.join(args)} killed after {delay * 1e3:.0f} ms"
        res = run_killed(store, args, job.pid, delay)
        if res.returncode != 0:
            assert res.returncode == -signal.SIGKILL, (what, res.returncode, res.stderr)
            killed_mid_run += 1
        if "--kill" in args and not alive(job.pid):
            # Killed after its commit, while ending the job: the checkpoint is there, the newest.
            newest = json.loads(ok(incr(store, "list", "--json")).stdout)[-1]
            assert newest["id"] != base["id"], f"{what}: the job died, yet no checkpoint committed"
            committed = newest
            kill_and_wait_gone(job.pid)
        else:
            assert_unharmed(job.pid, what)
            committed = json.loads(ok(incr(store, "checkpoint", job.pid, "--json", "--tracker", tracker)).stdout)
            assert committed["tracker"] == tracker, committed
            kill_and_wait_gone(job.pid)
        res = ok(incr(store, "restore", "--id", committed["id"], "--detach"))
        assert int(res.stdout.split()[-1]) == job.pid, what
        assert_memory_exact(job, f"{what}: checkpoint {committed['id'][:12]} restored")
        if IN_GUEST and trial < TRIALS - 1:
            continue                # emulated: two more commands a trial doubled the guest's time
        problems = verify_here(store)
        assert not problems, f"{what}: the store does not verify: {problems}"
        # Retention between trials, as a supervisor keeps it: the tracker's base (the newest
        # checkpoint) stays, and the store stays small enough to be read whole after each trial.
        maintenance.forget(store, policy=gc.Policy(last=2), prune=True)
    assert killed_mid_run >= TRIALS // 2, f"only {killed_mid_run} of {TRIALS} commands were killed mid-run"
    kill_and_wait_gone(job.pid)


@pytest.mark.slow
@pytest.mark.timeout(1800)               # (the guest's own limit is 1500 s)
@pytest.mark.skipif(IN_GUEST, reason="already inside the soft-dirty guest")
def test_soft_dirty_soak_in_a_vm() -> None:
    """The soak with the soft-dirty tracker (clear_refs), for real, in a guest whose kernel has it:
    fewer trials, the guest is emulated."""
    if dirty.probe().soft_dirty:
        pytest.skip("this kernel has soft-dirty: the soft-dirty soak ran natively")
    run_in_guest(Path(__file__), "soft-dirty and killed", env={"INCR_SOAK_TRIALS": "3", "INCR_SOAK_PAGES": "4096"},
                 timeout=1500)
