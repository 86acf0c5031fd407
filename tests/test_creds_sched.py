"""Credentials, capabilities, scheduling and namespaces, per thread: each self-checking program sets
up its state, is dumped (selfcheck.MODES), restored detached, and checks that every thread has
what it had.  What cannot be restored is refused at checkpoint in one line naming PID and resource."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, read_pid, wait_exit
from incr.engine import creds, hardening, sched
from incr.pagestore import Store
from incr.proto import image_pb2


def image_of(store: Path) -> image_pb2.TreeImage:
    """The tree image of the newest checkpoint."""
    with Store.open(store) as st:
        _, snap = st.snapshots()[-1]
    return image_pb2.TreeImage.FromString(snap.payload)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_capabilities_of_each_thread(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    outcome = selfcheck.run(cprog("caps", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)
    assert image_of(store).version == 3, "a version-2 reader would give every thread all of incr's capabilities"


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_scheduling_of_each_thread(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str) -> None:
    outcome = selfcheck.run(cprog("sched", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)
    assert image_of(store).version == 3, "a version-2 reader would give every thread SCHED_OTHER"


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


def first_dump(store: Path, pid: int, mode: str) -> subprocess.CompletedProcess[str]:
    """The first command of the `mode` way of dumping (selfcheck.dump): where a refusal must come."""
    if mode == "kill":
        return incr(store, "checkpoint", pid, "--kill", timeout=selfcheck.TIMEOUT)
    return incr(store, "predump", pid, timeout=selfcheck.TIMEOUT)


def assert_refused(result: subprocess.CompletedProcess[str], pid: int, *words: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"incr: cannot checkpoint PID {pid}:") or f"cannot checkpoint PID {pid}:" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert os.path.exists(f"/proc/{pid}"), "a refused checkpoint leaves the job running"
    return lines[0]


UNSHARE = {
    "network": ("--net",),
    "mount": ("--mount",),
    "IPC": ("--ipc",),
    "cgroup": ("--cgroup",),
    "user": ("--user",),
    "time": ("--time", "--fork", "--boottime", "100000", "--monotonic", "100000"),
}


@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("kind", UNSHARE)
def test_job_in_a_namespace_of_its_own_is_refused(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str,
                                                  kind: str) -> None:
    exe = cprog("nsjob", "-pthread")
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    procs.start(["unshare", *UNSHARE[kind], exe, out, ready, go])
    pid = procs.track(read_pid(ready))
    line = assert_refused(first_dump(store, pid, mode), pid, f"{kind} namespace", "not supported")
    assert os.readlink(f"/proc/{pid}/ns/{UNSHARE_NS[kind]}") in line


UNSHARE_NS = {"network": "net", "mount": "mnt", "IPC": "ipc", "cgroup": "cgroup", "user": "user",
              "time": "time"}


UTS_JOB = """
import os, socket, sys, time
out, ready, go, launcher = sys.argv[1:5]
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\\n")
os.rename(ready + ".tmp", ready)
while not os.path.exists(go):
    time.sleep(0.001)
host, ours = socket.gethostname(), os.readlink("/proc/self/ns/uts")
with open(out, "w") as f:
    f.write(("ok" if host == "incr-uts-job" else "BAD") + f" host name {host}\\n")
    f.write(("ok" if ours != launcher else "BAD") + f" a UTS namespace of its own ({ours}; the launcher's "
            f"{launcher})\\n")
"""


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_job_started_in_a_uts_namespace_of_its_own_comes_back_in_one(tmp_path: Path, store: Path, procs: Procs,
                                                                       mode: str) -> None:
    """unshare(1) --uts, a host name set in it: the restored job runs in a UTS namespace of its own
    again, with that host name; incr's is untouched."""
    job = tmp_path / "job.py"
    job.write_text(UTS_JOB)
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/sh\nexec unshare --uts /bin/sh -c \'hostname incr-uts-job && exec "$0" "$@"\' '
                      f'{sys.executable} {job} "$@"\n')
    script.chmod(0o755)
    mine = socket.gethostname()
    selfcheck.assert_passed(selfcheck.run(script, tmp_path, store, procs, mode, os.readlink("/proc/self/ns/uts")))
    assert socket.gethostname() == mine


@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize(("how", "words"), [
    ("thread-uts", ("UTS namespace", "its thread")),
    ("thread-net", ("network namespace", "its thread")),
    ("pid-for-children", ("PID namespace for its children", "unshared")),
    ("time-for-children", ("time namespace for its children", "unshared")),
])
def test_namespace_made_by_the_job_itself_is_refused(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str,
                                                     how: str, words: tuple[str, ...]) -> None:
    pid, _, _, _ = selfcheck.start(cprog("nsjob", "-pthread"), tmp_path, procs, how)
    assert_refused(first_dump(store, pid, mode), pid, *words)


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_job_in_an_audit_session_of_its_own_is_refused(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                       mode: str) -> None:
    pid, _, _, _ = selfcheck.start(cprog("loginuid"), tmp_path, procs, 3)
    assert_refused(first_dump(store, pid, mode), pid, "audit session", "login uid 3")


def in_audit_session(loginuid: int) -> Callable[[], None]:
    """For Popen(preexec_fn=...): the child writes its login uid, so it runs in a new audit session."""
    def enter() -> None:
        with open("/proc/self/loginuid", "w") as f:
            f.write(str(loginuid))
    return enter


def incr_in_audit_session(store: Path, *args: str | int) -> subprocess.CompletedProcess[str]:
    """The incr command line run from a login session of its own (login uid 5), as from an ssh login."""
    return subprocess.run([sys.executable, "-m", "incr", "--store", str(store), *map(str, args)],
                          capture_output=True, text=True, timeout=selfcheck.TIMEOUT, stdin=subprocess.DEVNULL,
                          preexec_fn=in_audit_session(5))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_job_with_no_login_uid_restored_from_a_login_session(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                             mode: str) -> None:
    """The job has no login uid (a batch system's); checkpoints and the restore run in login sessions:
    it comes back with none."""
    pid, job, out, go = selfcheck.start(cprog("loginuid"), tmp_path, procs)
    commands = [("checkpoint", pid, "--kill")] if mode == "kill" else \
        [("predump", pid), ("checkpoint", pid), ("checkpoint", pid, "--kill")]
    for command in commands:
        res = incr_in_audit_session(store, *command)
        assert res.returncode == 0, res.stderr
    selfcheck.wait_gone(pid, job)
    image = image_of(store)
    assert image.processes[0].threads[0].HasField("sched") and image.processes[0].threads[0].creds.HasField("caps")
    assert not (creds.needs_version_3(image) or sched.needs_version_3(image) or hardening.needs_version_3(image)), \
        "nothing of a plain job's credentials or scheduling that an older incr would restore otherwise"
    res = incr_in_audit_session(store, "restore", "--detach")
    assert res.returncode == 0, res.stderr
    assert "audit" not in res.stderr, "given back exactly: nothing to say"
    restored = procs.track(int(res.stdout.split()[-1]))
    go.touch()
    status = wait_exit(restored, timeout=selfcheck.TIMEOUT)
    selfcheck.assert_passed(selfcheck.Outcome(pid=restored, status=status, lines=out.read_text().splitlines()))


def test_job_restored_from_another_login_session_joins_the_restorers(cprog, tmp_path: Path, store: Path,
                                                                     procs: Procs) -> None:
    """Checkpointed from the login session it runs in, restored from none: the session id cannot be
    given back; the job continues in the restore's audit session, and restore says so."""
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    script = (f'"$@" {out} {ready} {go} </dev/null >/dev/null 2>&1 & while [ ! -s {ready} ]; do sleep 0.01; done; '
              f'{sys.executable} -m incr --store {store} checkpoint --kill "$(cat {ready})"')
    session = procs.start(["sh", "-c", script, "sh", cprog("loginuid")], preexec_fn=in_audit_session(7),
                          stderr=subprocess.PIPE)
    _, err = session.communicate(timeout=selfcheck.TIMEOUT)
    assert session.returncode == 0, err
    res = incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT)
    assert res.returncode == 0, res.stderr
    restored = procs.track(int(res.stdout.split()[-1]))
    assert "login uid 7" in res.stderr and "cannot give back" in res.stderr, res.stderr
    assert Path(f"/proc/{restored}/loginuid").read_text() == Path("/proc/self/loginuid").read_text()
    assert Path(f"/proc/{restored}/sessionid").read_text() == Path("/proc/self/sessionid").read_text()


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_tsc_mode_of_each_thread_and_memory_deny_write_execute(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                               mode: str) -> None:
    outcome = selfcheck.run(cprog("hardening", "-pthread"), tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)
