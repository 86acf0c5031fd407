"""A checkpoint that meets a full disk, an I/O error or a Ctrl-C gives up cleanly (issue 9, item 5).

One line on stderr and no traceback; exit 1 (130 for Ctrl-C); the job thawed and running, its
memory as an uninterrupted run has it (tests/programs/randjob.c reports a digest that a reference
computation checks); nothing half-committed: no temporary file, no pack but the committed ones
(the aborted checkpoint's sealed packs are removed), the store's checkpoints verify and restore;
the next checkpoint after space is freed succeeds, incremental against the last committed one.
The full disk is a small tmpfs the test mounts (and unmounts, whatever happens).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from xorjob import Job, assert_memory_exact

from conftest import Procs, incr, kill_and_wait_gone, ok, read_pid, wait_until
from incr.pagestore import Store

PAGES = 16384                 # 64 MiB of incompressible memory: more than one 32 MiB pack
SMALL_PAGES = 1024
FS_SIZE = 160 << 20


def start_job(cprog: object, procs: Procs, tmp_path: Path, name: str, pages: int) -> Job:
    exe = cprog("randjob")  # type: ignore[operator]
    report, ready = tmp_path / f"{name}.report", tmp_path / f"{name}.ready"
    procs.start([exe, report, ready, pages])
    return Job(exe, report, procs.track(read_pid(ready)), pages)


def assert_correct(job: Job, why: str) -> None:
    assert_memory_exact(job, why)


def assert_running(job: Job, why: str) -> None:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{job.pid}/status").read_text().splitlines())
    assert status["TracerPid"].strip() == "0", (why, status["TracerPid"])
    assert status["State"].strip()[0] in "RS", (why, status["State"])


def assert_one_line(res: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and len(lines) == 1, res.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def store_files(store: Path) -> set[str]:
    """Every file of the store but the index and the lock (which any command may touch)."""
    return {str(p.relative_to(store)) for p in store.rglob("*")
            if p.is_file() and p.parts[len(store.parts)] in ("packs", "snapshots")}


def assert_store_as_before(store: Path, before: set[str], why: str) -> None:
    after = store_files(store)
    assert not [f for f in after if f.endswith(".tmp")], (why, after)
    assert after == before, f"{why}: left {sorted(after - before)}, lost {sorted(before - after)}"
    with Store.open(store) as s:
        assert s.verify() == [], why


def checkpoints(store: Path) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(ok(incr(store, "list", "--json")).stdout)
    return result


def restore(store: Path, procs: Procs, snapshot: str) -> int:
    res = ok(incr(store, "restore", "--id", snapshot, "--detach"))
    return procs.track(int(res.stdout.split()[-1]))


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of FS_SIZE bytes, unmounted at the end whatever happened."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(fs: Path, leave: int) -> Path:
    """A file taking all of `fs`'s free space but `leave` bytes."""
    st = os.statvfs(fs)
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize - leave)
    finally:
        os.close(fd)
    return filler


@pytest.mark.timeout(600)
def test_a_full_disk_aborts_the_checkpoint_in_one_line_and_the_next_one_succeeds(
        cprog: object, tmp_path: Path, small_fs: Path, procs: Procs) -> None:
    store = small_fs / "store"
    # A checkpoint already in the store, of another job that is no more.
    first = start_job(cprog, procs, tmp_path, "first", SMALL_PAGES)
    old = json.loads(ok(incr(store, "checkpoint", first.pid, "--kill", "--json")).stdout)["id"]
    kill_and_wait_gone(first.pid)

    # 1. The disk fills in the middle of a checkpoint: after a 32 MiB pack is sealed, before the next.
    job = start_job(cprog, procs, tmp_path, "job", PAGES)
    before = store_files(store)
    filler = fill(small_fs, 48 << 20)
    res = incr(store, "checkpoint", job.pid)
    assert_one_line(res, 1, "No space left on device", str(store), "MiB", "nothing was committed")
    assert_running(job, "after the full disk")
    assert_correct(job, "after the full disk")
    assert_store_as_before(store, before, "after the full disk")
    assert [c["id"] for c in checkpoints(store)] == [old]

    # 2. Space freed: the next checkpoint succeeds.
    filler.unlink()
    full = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)

    # 3. Full again, with a committed checkpoint of the job to be incremental against.
    before = store_files(store)
    filler = fill(small_fs, 256 << 10)
    res = incr(store, "checkpoint", job.pid)
    assert_one_line(res, 1, "No space left on device", str(store))
    assert_running(job, "after the second full disk")
    assert_store_as_before(store, before, "after the second full disk")
    filler.unlink()
    incremental = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert incremental["parent"] == full["id"], incremental
    assert incremental["bytes_stored"] < full["bytes_stored"] // 2, (incremental, full)

    # 4. What was committed restores: the job as an uninterrupted run has it.
    kill_and_wait_gone(job.pid)
    assert restore(store, procs, incremental["id"]) == job.pid
    assert_correct(job, "restored after the full disks")
    assert restore(store, procs, old) == first.pid
    assert_correct(first, "the checkpoint from before the full disks")
    with Store.open(store) as s:
        assert s.verify() == []


@pytest.mark.parametrize("point", ["pack-written", "indexed", "manifest-written"])
def test_an_io_error_at_each_write_aborts_the_checkpoint_in_one_line(
        cprog: object, tmp_path: Path, store: Path, procs: Procs, point: str) -> None:
    job = start_job(cprog, procs, tmp_path, "job", SMALL_PAGES)
    base = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)["id"]
    before = store_files(store)
    res = incr(store, "checkpoint", job.pid, env={"INCR_FAULT": point, "INCR_FAULT_ERRNO": "EIO"})
    assert_one_line(res, 1, "Input/output error", str(store), "nothing was committed")
    assert_running(job, point)
    assert_correct(job, point)
    if point == "pack-written":
        assert_store_as_before(store, before, point)         # the sealed pack is gone again
    else:
        # Packs indexed before the failure stay (complete; the next checkpoint deduplicates
        # against them): only they may be new.
        after = store_files(store)
        assert not [f for f in after if f.endswith(".tmp")] and {f for f in after - before
                                                                 if not f.startswith("packs/")} == set(), after
        with Store.open(store) as s:
            assert s.verify() == []
    assert [c["id"] for c in checkpoints(store)] == [base]
    after_error = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert after_error["parent"] == base
    kill_and_wait_gone(job.pid)
    restore(store, procs, after_error["id"])
    assert_correct(job, f"restored after the error at {point}")


def interrupted(store: Path, job: Job, point: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`incr checkpoint` sent SIGINT at `point`: a named fault point, or "storing": once its first
    pack is started (in a pre-copy round; with --no-precopy, storing the frozen copy after the thaw)."""
    if point != "storing":
        return incr(store, "checkpoint", job.pid, *args, env={"INCR_FAULT": point, "INCR_FAULT_SIGNAL": "SIGINT"})
    p = subprocess.Popen([sys.executable, "-m", "incr", "--store", str(store), "checkpoint", str(job.pid), *args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: any((store / "packs").glob("*.tmp")), "a pack to be started")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate()
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("point", ["storing", "frozen", "thawed", "pack-written", "indexed", "manifest-written"])
@pytest.mark.parametrize("mode", [(), ("--no-precopy",), ("--kill",)], ids=["", "no-precopy", "kill"])
def test_ctrl_c_during_a_checkpoint_leaves_the_job_running(
        cprog: object, tmp_path: Path, store: Path, procs: Procs, point: str, mode: tuple[str, ...]) -> None:
    job = start_job(cprog, procs, tmp_path, "job", PAGES)
    # Interrupted while storing, the first checkpoint (64 MiB to store: the Ctrl-C comes well before the end).
    base = "" if point == "storing" else json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)["id"]
    before = store_files(store)
    res = interrupted(store, job, point, *mode)
    assert_one_line(res, 130, "interrupted")
    assert_running(job, point)
    assert_correct(job, point)
    assert [c["id"] for c in checkpoints(store)] == ([base] if base else [])
    after = store_files(store)
    assert not [f for f in after if f.endswith(".tmp")], after
    if point not in ("indexed", "manifest-written"):         # packs indexed before the Ctrl-C stay
        assert after == before, sorted(after - before)
    with Store.open(store) as s:
        assert s.verify() == []
    next_one = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert (next_one["parent"] or "") == base
    kill_and_wait_gone(job.pid)
    restore(store, procs, next_one["id"])
    assert_correct(job, f"restored after Ctrl-C at {point}")
