"""The store as something to trust: one writer at a time (and a dead one's lock taken over),
readers that see only committed state, StrictModes-like permission checks, the store and PID
edge cases a new user hits, and the removal of records of processes that no longer exist."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Procs, incr, ok, read_pid, wait_until

NOBODY = 65534

# A writer of store argv[1], as another incr command would be: takes the write lock, stores argv[2]
# MiB of pages in packs sealed at 1 MiB, writes its PID to argv[3], and on a line on stdin commits
# a snapshot (kind "checkpoint", epoch 1.0) and prints its id.
WRITER = r"""
import os, sys
from incr.pagestore import Store
from incr.proto import store_pb2
store = Store.open(sys.argv[1], create=True)
writer = store.writer(pack_target=1 << 20)
mib = int(sys.argv[2])
writer.add_pages(os.urandom(mib << 20))
writer.drain()
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(sys.argv[3] + ".tmp", sys.argv[3])
sys.stdin.readline()
print(writer.commit(store_pb2.Snapshot(kind="checkpoint", epoch=1.0)), flush=True)
"""


def assert_one_line_error(res: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert res.returncode == code, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {res.stderr!r}"
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def idle_job(cprog, tmp_path: Path, procs: Procs) -> int:
    ready = tmp_path / "idle.ready"
    procs.start([cprog("idle"), 2, "random", ready])
    return read_pid(ready)


def untraced(pid: int) -> bool:
    return "TracerPid:\t0\n" in Path(f"/proc/{pid}/status").read_text()


def hold_lock(store: Path, tmp_path: Path, procs: Procs, mib: int = 0) -> subprocess.Popen[bytes]:
    ready = tmp_path / f"writer-{len(procs.pids)}.ready"
    writer = procs.start([sys.executable, "-c", WRITER, store, str(mib), ready],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert read_pid(ready) == writer.pid
    return writer


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------- locking

def test_no_wait_fails_at_once_naming_the_writer_that_holds_the_store(idle_job: int, tmp_path: Path, store: Path,
                                                                      procs: Procs) -> None:
    holder = hold_lock(store, tmp_path, procs)
    for command in ("checkpoint", "predump"):
        res = incr(store, command, "--no-wait", idle_job)
        assert_one_line_error(res, 1, f"store {store} is locked by another writer (pid {holder.pid})")
        assert untraced(idle_job)
    assert not any((store / "snapshots").iterdir())


def test_a_second_writer_waits_saying_for_whom_then_proceeds(idle_job: int, tmp_path: Path, store: Path,
                                                            procs: Procs) -> None:
    holder = hold_lock(store, tmp_path, procs)
    waiting = subprocess.Popen([sys.executable, "-m", "incr", "--store", str(store), "checkpoint", str(idle_job)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert waiting.stderr is not None
        line = waiting.stderr.readline()
        assert line == f"incr: waiting for the store lock held by pid {holder.pid}\n"
        assert waiting.poll() is None
        holder.kill()                            # the holder dies: the kernel drops its lock
        out, err = waiting.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            waiting.kill()
        waiting.wait()
    assert waiting.returncode == 0, err
    assert re.fullmatch(r"[0-9a-f]{32}\n", out) and f"incr: checkpoint {out[:12]} of PID" in err, (out, err)


def test_a_writer_killed_while_holding_the_lock_leaves_no_stale_lock(idle_job: int, tmp_path: Path, store: Path,
                                                                     procs: Procs) -> None:
    holder = hold_lock(store, tmp_path, procs, mib=3)      # sealed packs on disk, nothing committed
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (store / "locks" / "write").read_text() == f"{holder.pid}\n"      # its PID is still written there
    ok(incr(store, "checkpoint", "--no-wait", idle_job))
    ok(incr(store, "predump", "--no-wait", idle_job))
    kinds = [c["kind"] for c in json.loads(ok(incr(store, "list", "--json")).stdout)]
    assert kinds == ["checkpoint", "predump"]


def test_a_lock_file_naming_a_dead_process_does_not_lock(idle_job: int, store: Path) -> None:
    ok(incr(store, "checkpoint", idle_job))
    (store / "locks" / "write").write_text(f"{dead_pid()}\n")
    ok(incr(store, "checkpoint", "--no-wait", idle_job))
    assert len(json.loads(ok(incr(store, "list", "--json")).stdout)) == 2


def test_a_reader_sees_only_committed_snapshots_while_a_writer_writes(idle_job: int, tmp_path: Path, store: Path,
                                                                      procs: Procs) -> None:
    ok(incr(store, "checkpoint", idle_job))
    before = json.loads(ok(incr(store, "list", "--json")).stdout)
    packs_before = set((store / "packs").rglob("*"))
    writer = hold_lock(store, tmp_path, procs, mib=4)       # packs sealed and on disk, no manifest yet
    assert set((store / "packs").rglob("*")) - packs_before, "the writer sealed no pack"
    assert json.loads(ok(incr(store, "list", "--json")).stdout) == before
    ok(incr(store, "inspect", before[0]["id"]))
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(b"commit\n")
    writer.stdin.flush()
    committed = writer.stdout.readline().decode().strip()
    assert writer.wait(timeout=60) == 0
    after = json.loads(ok(incr(store, "list", "--json")).stdout)
    assert [c["id"] for c in after] == [committed, before[0]["id"]]  # the writer's epoch is 1.0: first


# ---------------------------------------------------------------- permissions

@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022])
def test_store_directories_are_0700_and_files_0600_whatever_the_umask(idle_job: int, store: Path,
                                                                      mask: int) -> None:
    with umask(mask):
        ok(incr(store, "checkpoint", idle_job))
        ok(incr(store, "checkpoint", idle_job))
    entries = [store, *store.rglob("*")]
    assert len(entries) > 8
    for path in entries:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


@pytest.mark.parametrize(("where", "mode", "who", "fix"), [
    ("", 0o777, "others", 700),
    ("", 0o770, "its group", 700),
    ("packs", 0o757, "others", 700),
    ("snapshots", 0o730, "its group", 700),
    ("index", 0o777, "others", 700),
    ("locks", 0o702, "others", 700),
    ("config", 0o666, "others", 600),
])
def test_a_store_writable_by_others_is_refused_saying_how_to_fix_it(idle_job: int, store: Path, where: str,
                                                                    mode: int, who: str, fix: int) -> None:
    ok(incr(store, "checkpoint", idle_job))
    path = store / where if where else store
    path.chmod(mode)
    what = "it is" if not where else f"{path} is"
    line = (f"store {store} is not safe to use: {what} writable by {who} (mode {mode:04o}); fix it with: "
            f"chmod {fix} {path}")
    for args in (("list",), ("checkpoint", idle_job), ("predump", idle_job), ("restore", "--latest")):
        res = incr(store, *args)
        assert res.returncode == 1 and res.stderr == f"incr {args[0]}: error: {line}\n", res.stderr
    assert stat.S_IMODE(path.stat().st_mode) == mode       # checked, not silently changed
    assert untraced(idle_job)
    path.chmod(0o700 if path.is_dir() else 0o600)
    ok(incr(store, "checkpoint", idle_job))


@pytest.mark.parametrize("where", ["", "packs", "config", "snapshots"])
def test_a_store_owned_by_another_user_is_refused(idle_job: int, store: Path, where: str) -> None:
    ok(incr(store, "checkpoint", idle_job))
    path = store / where if where else store
    os.chown(path, NOBODY, -1)
    what = "it is" if not where else f"{path} is"
    line = (f"store {store} is not safe to use: {what} owned by nobody (uid {NOBODY}), not by you (root, uid 0); "
            f"fix it with: run incr as nobody, or take the store over: chown -R root {store}")
    for args in (("list",), ("checkpoint", idle_job), ("restore", "--latest")):
        res = incr(store, *args)
        assert res.returncode == 1 and res.stderr == f"incr {args[0]}: error: {line}\n", res.stderr
    os.chown(path, 0, -1)
    ok(incr(store, "list"))


def test_an_empty_directory_of_another_user_does_not_become_a_store(idle_job: int, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, -1)
    assert_one_line_error(incr(theirs, "checkpoint", idle_job), 1, f"store {theirs} is not safe to use: it is "
                                                                   f"owned by nobody (uid {NOBODY})")
    assert list(theirs.iterdir()) == []
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o755 and theirs.stat().st_uid == NOBODY
    assert untraced(idle_job)


# ---------------------------------------------------------------- store and PID edge cases

def test_an_existing_empty_directory_becomes_a_store(idle_job: int, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    with umask(0o022):
        empty.mkdir()
    ok(incr(empty, "checkpoint", idle_job))
    assert (empty / "config").is_file()
    assert stat.S_IMODE(empty.stat().st_mode) == 0o700
    assert [c["root_pid"] for c in json.loads(ok(incr(empty, "list", "--json")).stdout)] == [idle_job]
    ok(incr(empty, "predump", idle_job))


def test_a_missing_directory_becomes_a_store_with_its_parents(idle_job: int, tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "store"
    ok(incr(deep, "predump", idle_job))
    assert (deep / "config").is_file()
    ok(incr(deep, "checkpoint", idle_job))


def test_a_directory_that_is_not_a_store_and_not_empty_is_refused(idle_job: int, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "results.csv").write_text("1,2,3\n")
    for command in ("checkpoint", "predump"):
        assert_one_line_error(incr(data, command, idle_job), 1,
                              f"{data} is not an incr store (it is not empty and has no config file)")
    assert sorted(p.name for p in data.iterdir()) == ["results.csv"]
    assert untraced(idle_job)


def test_checkpoint_of_pid_1_names_pid_1(store: Path) -> None:
    """incr runs below PID 1: the refusal names PID 1, not the first of incr's parents the tree walk meets."""
    line = assert_one_line_error(incr(store, "checkpoint", 1), 1)
    assert line.startswith("incr checkpoint: error: cannot checkpoint PID 1: "), line
    assert not store.exists()


NEVER_WAITS = r"""
import subprocess, sys, signal
subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
signal.pause()                                  # never reaps it
"""


def test_restore_right_after_kill_9_names_the_parent_that_has_not_reaped_the_job(cprog, tmp_path: Path,
                                                                                  store: Path,
                                                                                  procs: Procs) -> None:
    ready = tmp_path / "ready"
    parent = procs.start([sys.executable, "-c", NEVER_WAITS, cprog("idle"), "1", "zero", ready])
    pid = procs.track(read_pid(ready))
    ok(incr(store, "checkpoint", pid))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z", "the zombie")
    res = incr(store, "restore", "--latest", "--detach")
    comm = Path(sys.executable).name[:15]
    assert res.returncode == 1 and res.stderr == (
        f"incr restore: error: cannot restore: PID {pid} (idle) is a zombie of PID {parent.pid} ({comm}) (its "
        f"parent has not reaped it): make PID {parent.pid} reap it (wait for it) or end PID {parent.pid} "
        f"(kill {parent.pid}), then run restore again; or restore with --new-pidns\n"), res.stderr
    parent.kill()
    parent.wait()
    wait_until(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, "the zombie to come to us (the subreaper)")
    assert int(ok(incr(store, "restore", "--latest", "--detach")).stdout) == pid


# ---------------------------------------------------------------- records of gone processes

def start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_records_of_processes_that_no_longer_exist_are_removed_by_the_next_command(
        idle_job: int, cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    ok(incr(store, "checkpoint", idle_job))
    run = tmp_path / "incr-runtime"
    gone, busy = dead_pid(), dead_pid()
    other = read_pid_of(procs.start([cprog("idle"), 1, "zero", tmp_path / "other.ready"]), tmp_path / "other.ready")
    record = {"pid": 0, "start_time": 0, "tracker": "uffd-wp", "store": str(store), "base": ""}

    def write(name: str, pid: int, started: int) -> None:
        (run / name).write_text(json.dumps({**record, "pid": pid, "start_time": started, "leftovers": []}))

    for name in (f"tracker-{gone}.json", f"job-{gone}.json"):
        write(name, gone, 1)
    (run / f"job-{gone}.lock").write_text("")
    (run / f".tracker-{gone}.json.tmp").write_text("{")
    write(f"tracker-{other}.json", other, start_time(other) + 1)      # its PID since taken by another process
    write(f"job-{other}.json", other, start_time(other))               # the live process's own
    write(f"tracker-{busy}.json", busy, 1)                             # gone, but a command works on it
    busy_lock = os.open(run / f"job-{busy}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(busy_lock, fcntl.LOCK_EX)
        os.write(busy_lock, f"{os.getpid()}\n".encode())
        kept = {f"tracker-{idle_job}.json", f"job-{idle_job}.lock", f"job-{other}.json",
                f"tracker-{busy}.json", f"job-{busy}.lock"}
        assert kept <= {p.name for p in run.iterdir()}
        ok(incr(store, "list"))
        assert {p.name for p in run.iterdir()} == kept
    finally:
        os.close(busy_lock)
    ok(incr(store, "list"))
    assert {p.name for p in run.iterdir()} == kept - {f"tracker-{busy}.json", f"job-{busy}.lock"}
    ok(incr(store, "checkpoint", idle_job))                            # its own record still good: incremental
    assert json.loads(ok(incr(store, "list", "--json")).stdout)[-1]["parent"]


def read_pid_of(p: subprocess.Popen[bytes], ready: Path) -> int:
    pid = read_pid(ready)
    assert pid == p.pid
    return pid
