"""Credentials, capabilities, scheduling and namespaces, per thread: each self-checking program sets
up its state, is dumped (selfcheck.MODES), restored detached, and checks that every thread has
what it had.  What cannot be restored is refused at checkpoint in one line naming PID and resource."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, read_pid


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_capabilities_of_each_thread(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    outcome = selfcheck.run(cprog("caps", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_scheduling_of_each_thread(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    outcome = selfcheck.run(cprog("sched", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_credentials_of_each_thread(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    outcome = selfcheck.run(cprog("threadcreds", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory an unprivileged job can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="incr-h6-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


SETPRIV_NOBODY = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--inh-caps",
                  "+net_bind_service", "--ambient-caps", "+net_bind_service", "--bounding-set", "-sys_boot,-mknod")


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_unprivileged_job_keeps_its_ids_and_capabilities(cprog, open_dir: Path, store: Path, procs: Procs,
                                                          mode: str) -> None:
    exe = cprog("nonroot")
    out, ready, go = open_dir / "out.txt", open_dir / "ready", open_dir / "go"
    job = procs.start([*SETPRIV_NOBODY, exe, out, ready, go])
    pid = procs.track(read_pid(ready))
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, job)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
