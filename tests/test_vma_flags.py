"""Per-VMA attributes (madvise flags, mlock, MAP_NORESERVE, MAP_DROPPABLE, guard
regions, mseal) and process-wide memory settings (PR_SET_THP_DISABLE, KSM
merge-any, mlockall futures) survive a checkpoint and a restore: the restored
program sees the same /proc/self/smaps VmFlags and Locked sizes, the same prctl
values, and the same behaviour (faults, fork), tests/programs/vmaflags.c."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, read_pid, wait_until
from incr.engine import proc
from incr.engine import ptrace as pt

# (PR_SET_THP_DISABLE value, mlockall flags, PR_SET_MEMORY_MERGE)
SETTINGS = {
    "thp-except-advised": ("3", "0", "0"),
    "thp-off+mcl-future+merge-any": ("1", "2", "1"),
    "mcl-future-onfault": ("0", "6", "0"),
}


@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_vma_attributes_survive(cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs, mode: str,
                                setting: str) -> None:
    outcome = selfcheck.run(cprog("vmaflags"), tmp_path, store, procs, mode, *SETTINGS[setting])
    selfcheck.assert_passed(outcome)


def test_userfaultfd_registration_refused(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                          procs: Procs) -> None:
    """A mapping registered with a userfaultfd held outside the job cannot come back as it is:
    the checkpoint says so in one line naming the PID and the mapping, and the job runs on."""
    pid, _, out, go = selfcheck.start(cprog("uffdheld"), tmp_path, procs)
    pidfd = os.pidfd_open(pid)
    try:
        held = pt.pidfd_getfd(pidfd, 50)
    finally:
        os.close(pidfd)
    try:
        go.touch()
        wait_until(lambda: out.exists() and "ok closed" in out.read_text(), "the job to close its userfaultfd")
        res = incr(store, "checkpoint", pid, timeout=selfcheck.TIMEOUT)
    finally:
        os.close(held)
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert re.search(rf"cannot checkpoint PID {pid}: mapping 0x[0-9a-f]+-0x[0-9a-f]+ \(anonymous\): VmFlags "
                     r"shows 'um'", lines[0]), lines[0]
    assert os.path.exists(f"/proc/{pid}") and proc.stat(pid).state != "Z"


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory user nobody can use (pytest's own tmp tree is root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="incr-test-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_vma_attributes_survive_for_a_non_root_job(cprog: Callable[..., Path], world_dir: Path, store: Path,
                                                  procs: Procs, mode: str) -> None:
    """The same for a job of user nobody, whose mlock()s are bound by its RLIMIT_MEMLOCK: the restore
    locks as root, after the job's limits are set, and switches credentials last."""
    nobody = pwd.getpwnam("nobody")
    exe = world_dir / "vmaflags"
    shutil.copy(cprog("vmaflags"), exe)
    exe.chmod(0o755)
    outcome = selfcheck.run(exe, world_dir, store, procs, mode, *SETTINGS["thp-off+mcl-future+merge-any"],
                            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    selfcheck.assert_passed(outcome)


def test_vmflags_changing_during_the_checkpoint_are_caught(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    """VmFlags are read before the freeze (a frozen page walk would lengthen it) and again after the
    thaw: a job that changed them meanwhile is frozen again, and refused in one line if it never stops."""
    ready = tmp_path / "ready"
    procs.start([cprog("flagflip"), ready])
    pid = procs.track(read_pid(ready))
    again = 0
    for _ in range(30):                  # until one is caught: under load the job may not run in the window
        if again:
            break
        res = incr(store, "-v", "checkpoint", pid, timeout=120)
        again += res.stderr.count("freezing again")
        if res.returncode != 0:
            errors = [line for line in res.stderr.splitlines() if "error" in line]
            assert errors == [f"incr checkpoint: error: PID {pid} kept changing the attributes of its memory mappings "
                              "(madvise, mlock) while being checkpointed; nothing was stored: take the checkpoint "
                              "again"], res.stderr
        assert Path(f"/proc/{pid}").exists()
    assert again > 0, "no change of VmFlags was ever noticed"
