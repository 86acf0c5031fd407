"""Bad input: one clear line on stderr, a non-zero exit, store and job untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Procs, incr, ok, read_pid


def tree_state(path: Path) -> list[tuple[str, int, int]]:
    """Every file of a store but LMDB's and the writers' lock files (which any open touches)."""
    if not path.exists():
        return []
    out = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            if name == "lock.mdb" or os.path.basename(root) == "locks":
                continue
            st = os.stat(os.path.join(root, name))
            out.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
    return sorted(out)


def assert_one_line_error(res, code: int, *needles: str) -> None:
    assert res.returncode == code, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {res.stderr!r}"
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def idle_job(cprog, tmp_path: Path, procs: Procs) -> int:
    ready = tmp_path / "idle.ready"
    procs.start([cprog("idle"), 2, "random", ready])
    return read_pid(ready)


@pytest.fixture
def store_with_checkpoint(store: Path, idle_job: int) -> Path:
    ok(incr(store, "checkpoint", idle_job))
    return store


def test_no_such_pid(store: Path) -> None:
    pid = 4_000_000   # above pid_max's default ceiling of 4194304? use a free one below it
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    res = incr(store, "checkpoint", pid)
    assert_one_line_error(res, 1, f"no process with PID {pid}")
    assert not store.exists(), "a failed checkpoint must not create the store"


def test_pid_not_a_number(store: Path) -> None:
    assert_one_line_error(incr(store, "checkpoint", "abc"), 2, "PID must be a number")


def test_kernel_thread_is_not_traceable(store_with_checkpoint: Path) -> None:
    before = tree_state(store_with_checkpoint)
    res = incr(store_with_checkpoint, "checkpoint", 2)
    assert_one_line_error(res, 1, "PID 2", "kernel thread")
    assert tree_state(store_with_checkpoint) == before


def test_already_traced_process(cprog, tmp_path: Path, store_with_checkpoint: Path, procs: Procs) -> None:
    ready = tmp_path / "traced.ready"
    tracer = procs.start([cprog("traced"), ready])
    child = procs.track(read_pid(ready))
    before = tree_state(store_with_checkpoint)
    res = incr(store_with_checkpoint, "checkpoint", child)
    assert_one_line_error(res, 1, f"PID {child}", f"already traced by PID {tracer.pid}")
    assert tree_state(store_with_checkpoint) == before


def test_restore_while_the_job_runs(store_with_checkpoint: Path, idle_job: int) -> None:
    before = tree_state(store_with_checkpoint)
    res = incr(store_with_checkpoint, "restore", "--latest")
    assert_one_line_error(res, 1, f"the job is still running: PID {idle_job} (idle) is the very process that was "
                          f"checkpointed; end it first (kill {idle_job})")
    assert "--new-pidns" not in res.stderr, "a second copy of the job is no way out"
    assert tree_state(store_with_checkpoint) == before
    assert os.path.exists(f"/proc/{idle_job}")


def test_store_that_does_not_exist(store: Path) -> None:
    for args in (["list"], ["restore"], ["inspect", "abcd"]):
        res = incr(store, *args)
        assert_one_line_error(res, 1, str(store), "does not exist")
    assert not store.exists()


def test_empty_store(store_with_checkpoint: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = incr(empty, "restore")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(empty.iterdir()) == []


def test_unknown_id(store_with_checkpoint: Path) -> None:
    before = tree_state(store_with_checkpoint)
    for args in (["restore", "--id", "ffffffff"], ["inspect", "ffffffff"]):
        assert_one_line_error(incr(store_with_checkpoint, *args), 2, "ffffffff")   # bad usage (README)
    assert tree_state(store_with_checkpoint) == before


def test_at_before_first_checkpoint(store_with_checkpoint: Path) -> None:
    before = tree_state(store_with_checkpoint)
    res = incr(store_with_checkpoint, "restore", "--at", "2001-01-01T00:00")
    assert_one_line_error(res, 1, "no checkpoint at or before 2001-01-01 00:00:00", "the first one is of")
    assert tree_state(store_with_checkpoint) == before


@pytest.mark.parametrize("garbage", ["yesterday-ish", "2026-13-45", "5 parsecs", ""])
def test_garbage_at(store_with_checkpoint: Path, garbage: str) -> None:
    before = tree_state(store_with_checkpoint)
    res = incr(store_with_checkpoint, "restore", "--at", garbage)
    assert_one_line_error(res, 2, "cannot read time")
    assert tree_state(store_with_checkpoint) == before


def test_no_store_given() -> None:
    env = {k: v for k, v in os.environ.items() if k != "INCR_STORE"}
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "incr", "list"], capture_output=True, text=True, env=env)
    assert_one_line_error(res, 2, "no store given")


def test_unsupported_resource_leaves_job_running(tmp_path: Path, store: Path, procs: Procs) -> None:
    import sys

    ready = tmp_path / "sock.ready"
    script = ("import socket, sys, time\ns = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)\n"
              "open(sys.argv[1], 'w').write('x\\n')\n"
              "while True: time.sleep(1)")
    job = procs.start([sys.executable, "-c", script, ready])
    from conftest import wait_until

    wait_until(ready.exists, "the job to open its socket")
    res = incr(store, "checkpoint", job.pid)
    assert_one_line_error(res, 1, f"PID {job.pid}", "socket", "not supported yet")
    assert not store.exists()
    assert job.poll() is None
    status = Path(f"/proc/{job.pid}/status").read_text()
    assert "TracerPid:\t0" in status


def test_job_tracing_one_of_its_own_processes(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    ready = tmp_path / "traced.ready"
    tracer = procs.start([cprog("traced"), ready])
    child = procs.track(read_pid(ready))
    res = incr(store, "checkpoint", tracer.pid)
    assert_one_line_error(res, 1, f"PID {child}", f"traced by PID {tracer.pid}", "of the same job",
                          "not supported")
    assert not store.exists(), "refused before the store was touched"
    assert tracer.poll() is None
    assert f"TracerPid:\t{tracer.pid}\n" in Path(f"/proc/{child}/status").read_text()


@pytest.mark.parametrize("kind, what", [("io_uring", "io_uring descriptors"), ("perf_event", "perf_event descriptors"),
                                        ("packet", "packet sockets"),
                                        ("seccomp-strict", "SECCOMP_MODE_STRICT")])
def test_unsupported_kinds_name_pid_fd_and_type(cprog, tmp_path: Path, store: Path, procs: Procs, kind: str,
                                                what: str) -> None:
    ready = tmp_path / "ready"
    job = procs.start([cprog("unsupported"), kind, ready])
    fd = read_pid(ready)
    res = incr(store, "checkpoint", job.pid)
    assert_one_line_error(res, 1, f"cannot checkpoint PID {job.pid}", what, "not supported")
    if fd >= 0:
        assert f"fd {fd} " in res.stderr
    assert not store.exists()
    assert job.poll() is None
    assert "TracerPid:\t0" in Path(f"/proc/{job.pid}/status").read_text()


def test_a_second_command_on_a_job_being_checkpointed_is_refused(idle_job: int, tmp_path: Path) -> None:
    """One incr command at a time per job: the job lock (what a running `incr checkpoint` holds)."""
    from incr.jobstate import JobLock

    lock = JobLock(idle_job)                   # held as another incr command would
    try:
        for args in (("checkpoint", idle_job), ("predump", idle_job), ("checkpoint", "--kill", idle_job)):
            res = incr(tmp_path / "store", *args)
            assert_one_line_error(res, 1, f"PID {idle_job} is being checkpointed by another incr command "
                                          f"(PID {os.getpid()})")
            assert not (tmp_path / "store").exists()
            assert Path(f"/proc/{idle_job}").exists()
    finally:
        lock.release()
    ok(incr(tmp_path / "store", "checkpoint", idle_job))


def test_an_os_error_no_layer_named_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI edge's last net: an OSError that reached it (a process vanishing under a /proc read,
    say) is one line and exit 1."""
    from incr import api
    from incr.cli import main as cli

    def vanished(self: api.Store) -> list[object]:
        raise PermissionError(13, "Permission denied", "/proc/4242/task/4243/ns/cgroup")

    monkeypatch.setattr(api.Store, "checkpoints", vanished)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--store", str(tmp_path), "list"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "incr list: error: Permission denied (/proc/4242/task/4243/ns/cgroup)\n"


def test_a_netlink_socket_holding_an_unread_answer_is_refused(tmp_path: Path, store: Path, procs: Procs) -> None:
    # The kernel's answer (queued as the request is sent) cannot be put back: refused.
    import sys

    ready = tmp_path / "nl.ready"
    script = ("import socket, struct, sys, time\n"
              "s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)\n"
              "s.send(struct.pack('=IHHIIBxxx', 20, 18, 0x301, 1, 0, 0))\n"    # RTM_GETLINK, NLM_F_REQUEST|DUMP
              "open(sys.argv[1], 'w').write('x\\n')\n"
              "while True: time.sleep(1)")
    job = procs.start([sys.executable, "-c", script, ready])
    from conftest import wait_until

    wait_until(ready.exists, "the job to ask the kernel")
    res = incr(store, "checkpoint", job.pid)
    assert_one_line_error(res, 1, f"PID {job.pid}", "netlink socket, route", "messages wait to be read")
    assert job.poll() is None
