"""Ghost files (engine/ghost.py): files a job holds or maps after their names were removed.

The conformance corpus checks their semantics (fd_ghost_files, mem_ghost_maps); here: a real
CPython job on tempfile.TemporaryFile (O_TMPFILE) restored to output identical to an
uninterrupted run, the --ghost-limit refusal (one line, nothing stored, the job unharmed), the
contents kept in the page store (a large sparse file costs its data, and nothing again when
unchanged), and restores where the world changed: the old name taken by someone else's file
(left alone), the directory gone (one-line refusal, nothing made)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, line_count, ok, reap_orphans, wait_until

TEMPFILE_JOB = r"""
import hashlib, mmap, os, sys, tempfile
out, gate = sys.argv[1], sys.argv[2]
scratch = tempfile.TemporaryFile(dir=os.path.dirname(out))          # O_TMPFILE: never had a name
spill = tempfile.SpooledTemporaryFile(max_size=4096, dir=os.path.dirname(out))
fd, name = tempfile.mkstemp(dir=os.path.dirname(out))
os.unlink(name)                                                     # the classic scratch idiom
os.ftruncate(fd, 1 << 16)
table = mmap.mmap(fd, 1 << 16)                                      # a shared mapping of it
with open(out, "w") as f:
    acc = hashlib.sha256()
    for r in range(40):
        if r == 20:
            while not os.path.exists(gate):
                sum(range(1000))
        block = hashlib.sha256(acc.digest() + bytes([r])).digest() * 64
        scratch.write(block)
        spill.write(block[: 100 + r])
        table[r * 1024 : r * 1024 + 32] = block[:32]
        scratch.seek(0)
        acc = hashlib.sha256(scratch.read())
        scratch.seek(0, os.SEEK_END)
        spill.seek(0)
        acc.update(spill.read())
        spill.seek(0, os.SEEK_END)
        acc.update(table[:])
        f.write(f"{r} {acc.hexdigest()} {scratch.tell()} {spill.tell()} {os.fstat(fd).st_nlink}\n")
        f.flush()
    f.write(f"done {os.fstat(scratch.fileno()).st_nlink} {spill._rolled}\n")
"""


@pytest.mark.parametrize("dump", ["kill", "incremental"])
def test_a_python_job_on_temporary_files_comes_back_identical(dump: str, tmp_path: Path, store: Path,
                                                               procs: Procs) -> None:
    ref, opened = tmp_path / "ref" / "out.txt", tmp_path / "ref" / "open"
    ref.parent.mkdir()
    opened.touch()
    p = procs.start([sys.executable, "-c", TEMPFILE_JOB, ref, opened])
    assert p.wait(timeout=300) == 0
    assert ref.read_text().endswith("done 0 True\n")

    out, gate = tmp_path / "run" / "out.txt", tmp_path / "run" / "gate"
    out.parent.mkdir()
    job = procs.start([sys.executable, "-c", TEMPFILE_JOB, out, gate])
    procs.track(job.pid)
    wait_until(lambda: line_count(out) >= 20, "the job to reach its gate")
    if dump == "incremental":
        ok(incr(store, "predump", job.pid))
        ok(incr(store, "checkpoint", job.pid))
    ok(incr(store, "checkpoint", job.pid, "--kill"))
    job.wait()
    wait_until(lambda: not os.path.exists(f"/proc/{job.pid}"), "the killed job to be gone")
    assert os.listdir(out.parent) == ["out.txt"]          # the job made no file that has a name
    gate.touch()
    res = incr(store, "restore", timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == ref.read_bytes()
    assert sorted(os.listdir(out.parent)) == ["gate", "out.txt"]     # nor did the restore leave one


def _start(cprog: Callable[..., Path], tmp_path: Path, procs: Procs, mib: int) -> tuple[int, Path, Path, Path]:
    work = tmp_path / "work"
    work.mkdir()
    pid, _job, out, go = selfcheck.start(cprog("ghostjob"), tmp_path, procs, work, mib)
    return pid, out, go, work


def _name(out: Path) -> str:
    """The name /proc showed the restored job for its file (ghostjob.c)."""
    return Path(f"{out}.name").read_text().strip()


def test_a_deleted_file_over_the_ghost_limit_is_refused_in_one_line_and_nothing_is_stored(
        cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    pid, out, go, work = _start(cprog, tmp_path, procs, 3)
    res = incr(store, "checkpoint", pid, "--ghost-limit", "1M")
    assert res.returncode == 1, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"PID {pid}" in res.stderr and "deleted" in res.stderr and "--ghost-limit 3M" in res.stderr, res.stderr
    assert not store.exists()
    assert "TracerPid:\t0" in Path(f"/proc/{pid}/status").read_text()
    bad = incr(store, "checkpoint", pid, "--ghost-limit", "lots")
    assert bad.returncode == 2 and "--ghost-limit" in bad.stderr and "Traceback" not in bad.stderr, bad
    # The job ran on untouched; with the limit raised it is checkpointed, and comes back.
    ok(incr(store, "checkpoint", pid, "--kill", "--ghost-limit", "3M"))
    selfcheck.wait_gone(pid, None)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
    assert _name(out) == f"{work}/scratch (deleted)"


def _bytes_stored(store: Path) -> list[int]:
    res = ok(incr(store, "list", "--json"))
    return [c["bytes_stored"] for c in json.loads(res.stdout)]


def test_a_large_sparse_ghost_costs_its_data_once(cprog: Callable[..., Path], tmp_path: Path, store: Path,
                                                  procs: Procs) -> None:
    pid, out, go, work = _start(cprog, tmp_path, procs, 256)     # 256 MiB, 1 MiB of it data
    ok(incr(store, "checkpoint", pid))
    ok(incr(store, "checkpoint", pid, "--kill"))
    first, second = _bytes_stored(store)
    assert first < 8 << 20, first                   # the holes cost nothing
    assert second < 256 << 10, second               # and the unchanged data nothing again
    selfcheck.wait_gone(pid, None)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
    assert _name(out) == f"{work}/scratch (deleted)"


def test_a_file_now_at_the_ghosts_old_name_is_left_alone(cprog: Callable[..., Path], tmp_path: Path,
                                                          store: Path, procs: Procs) -> None:
    pid, out, go, work = _start(cprog, tmp_path, procs, 2)
    ok(incr(store, "checkpoint", pid, "--kill"))
    selfcheck.wait_gone(pid, None)
    (work / "scratch").write_text("someone else's file\n")
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
    assert (work / "scratch").read_text() == "someone else's file\n"
    name = _name(out)
    assert name.startswith(f"{work}/.incr-") and name.endswith(" (deleted)"), name
    assert os.listdir(work) == ["scratch"]


def test_restore_refuses_in_one_line_when_the_ghosts_directory_is_gone(cprog: Callable[..., Path], tmp_path: Path,
                                                                      store: Path, procs: Procs) -> None:
    pid, _out, _go, work = _start(cprog, tmp_path, procs, 1)
    ok(incr(store, "checkpoint", pid, "--kill"))
    selfcheck.wait_gone(pid, None)
    shutil.rmtree(work)
    res = incr(store, "restore", "--detach")
    assert res.returncode == 1, res
    assert len(res.stderr.strip().splitlines()) == 1 and str(work) in res.stderr and "create it" in res.stderr, \
        res.stderr
    assert not os.path.exists(f"/proc/{pid}")
    assert not work.exists()
    reap_orphans()


def test_a_restore_killed_while_a_ghost_has_its_name_leaves_no_file_after_the_next(
        cprog: Callable[..., Path], tmp_path: Path, store: Path, procs: Procs) -> None:
    pid, out, go, work = _start(cprog, tmp_path, procs, 2)
    ok(incr(store, "checkpoint", pid, "--kill"))
    selfcheck.wait_gone(pid, None)
    crashed = incr(store, "restore", "--detach", env={"INCR_FAULT": "ghost-named"})
    assert crashed.returncode == -9, crashed.stderr
    assert os.listdir(work) == ["scratch"]                # killed while the file had its name
    selfcheck.wait_gone(pid, None)                         # (the stubs die with their restore)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
    assert _name(out) == f"{work}/scratch (deleted)"      # the name was free again: swept
    assert os.listdir(work) == []
