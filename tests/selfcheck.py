"""Running a self-checking program (tests/programs/selfcheck.h) through a
checkpoint and a restore, as the conformance suite does: the program sets
up a resource, is checkpointed and killed, restored detached, and checks
itself.

Two ways to dump it, each a parameter of the tests that use this module:

* ``kill``: one ``incr checkpoint --kill``;
* ``incremental``: ``incr predump``, ``incr checkpoint``, then an
  incremental ``incr checkpoint --kill`` (what `incr run` does all day).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conftest import Procs, incr, ok, read_pid, reap_orphans, wait_exit, wait_until

MODES = ("kill", "incremental")
TIMEOUT = 120       # seconds any one incr command may take before the test calls it a hang


@dataclass
class Outcome:
    """What the restored program said of itself."""

    pid: int                 # the restored root, as seen here
    status: int              # its wait status
    lines: list[str]         # its OUT file

    @property
    def bad(self) -> list[str]:
        return [line for line in self.lines if not line.startswith("ok ")]


def dump(store: Path, pid: int, mode: str, *extra: str) -> None:
    """Checkpoint `pid` the `mode` way; the job is killed by the last command."""
    if mode == "kill":
        ok(incr(store, "checkpoint", pid, "--kill", *extra, timeout=TIMEOUT))
    elif mode == "incremental":
        ok(incr(store, "predump", pid, timeout=TIMEOUT))
        ok(incr(store, "checkpoint", pid, *extra, timeout=TIMEOUT))
        ok(incr(store, "checkpoint", pid, "--kill", *extra, timeout=TIMEOUT))
    else:
        raise ValueError(mode)


def job_pids(root: int) -> list[int]:
    """`root` and every process below it, as /proc shows them now."""
    out = [root]
    for pid in out:
        out.extend(children(pid))
    return out


def children(pid: int) -> list[int]:
    """The children of every thread of `pid`."""
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                kids.extend(int(c) for c in f.read().split())
    except FileNotFoundError:
        pass
    return kids


def wait_gone(pid: int, job: subprocess.Popen[bytes] | None) -> None:
    if job is not None and job.pid == pid:
        job.wait(timeout=TIMEOUT)
        return

    def reaped() -> bool:
        reap_orphans()
        return not os.path.exists(f"/proc/{pid}")

    wait_until(reaped, f"PID {pid} to be gone")


def start(exe: Path | str, tmp_path: Path, procs: Procs, *args: object,
          **popen: object) -> tuple[int, subprocess.Popen[bytes], Path, Path]:
    """Start the program; (PID it reported ready, the Popen, OUT, GO)."""
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    job = procs.start([exe, out, ready, go, *args], **popen)
    pid = procs.track(read_pid(ready))
    return pid, job, out, go


def restore_and_check(store: Path, procs: Procs, out: Path, go: Path, *restore_args: str,
                      before_go: Callable[[int], None] | None = None) -> Outcome:
    res = ok(incr(store, "restore", "--detach", *restore_args, timeout=TIMEOUT))
    pid = procs.track(int(res.stdout.split()[-1]))
    if before_go is not None:
        before_go(pid)
    go.touch()
    status = wait_exit(pid, timeout=TIMEOUT)
    lines = out.read_text().splitlines() if out.exists() else []
    return Outcome(pid=pid, status=status, lines=lines)


def run(exe: Path | str, tmp_path: Path, store: Path, procs: Procs, mode: str, *args: object,
        restore_args: tuple[str, ...] = (), checkpoint_args: tuple[str, ...] = (),
        before_go: Callable[[int], None] | None = None, new_pidns: bool = False, **popen: object) -> Outcome:
    """The whole round: start, dump (`mode`), restore detached, let it check itself.  With
    `new_pidns` the restored root is not our child but the namespace init's, which ends with its
    status."""
    pid, job, out, go = start(exe, tmp_path, procs, *args, **popen)
    tree = job_pids(pid)
    for p in tree:
        procs.track(p)
    dump(store, pid, mode, *checkpoint_args)
    for p in tree:          # the killed children come to us, the subreaper, to be reaped
        wait_gone(p, job)
    if new_pidns:
        return restore_in_new_pidns(store, procs, out, go)
    return restore_and_check(store, procs, out, go, *restore_args, before_go=before_go)


def restore_in_new_pidns(store: Path, procs: Procs, out: Path, go: Path) -> Outcome:
    res = ok(incr(store, "restore", "--detach", "--new-pidns", timeout=TIMEOUT))
    root = procs.track(int(res.stdout.split()[-1]))
    init = procs.track(int(Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()[1]))
    go.touch()
    status = wait_exit(init, timeout=TIMEOUT)
    lines = out.read_text().splitlines() if out.exists() else []
    return Outcome(pid=root, status=status, lines=lines)


def assert_passed(outcome: Outcome) -> None:
    assert outcome.lines, "the restored program wrote no verdict"
    assert not outcome.bad, "\n".join(outcome.lines)
    assert os.WIFEXITED(outcome.status) and os.WEXITSTATUS(outcome.status) == 0, \
        (outcome.status, outcome.lines)
