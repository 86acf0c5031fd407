"""A changed world is noticed, and a restore gives the job no more than it had (issue 9, items 8 and 7).

A file the job only reads, a file it maps, and its executable that changed since the checkpoint in
a way size and mtime do not show (same length, mtime set back; replaced by a rename; deleted and
made again) make the restore refuse in one line naming the file, before any process exists.  Files
the job writes change legitimately after a checkpoint it ran on from and are not held to that.
A job of nobody's with nothing, restored by root, has exactly the credentials it had."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, ok, read_pid, wait_until

DATA_SIZE = 3 * 4096 + 100
MAP_SIZE = 2 * 4096


@dataclass
class World:
    """The files the changedworld job depends on, and its selfcheck paths."""

    exe: Path           # a copy of the program, which a test may change
    data: Path          # open read-only
    mapped: Path        # mapped MAP_PRIVATE, read-only
    out: Path
    ready: Path
    go: Path

    def target(self, name: str) -> Path:
        return {"data file": self.data, "mapped file": self.mapped, "executable": self.exe}[name]


def pattern(seed: int, size: int) -> bytes:
    return bytes((seed + i * 7 + i // 251) & 0xFF for i in range(size))


@pytest.fixture
def world(cprog: Callable[..., Path], tmp_path: Path) -> World:
    exe = tmp_path / "job-copy"
    shutil.copy2(cprog("changedworld"), exe)
    w = World(exe=exe, data=tmp_path / "input.dat", mapped=tmp_path / "table.bin", out=tmp_path / "out.txt",
              ready=tmp_path / "ready", go=tmp_path / "go")
    w.data.write_bytes(pattern(1, DATA_SIZE))
    w.mapped.write_bytes(pattern(2, MAP_SIZE))
    return w


def start(world: World, procs: Procs, *extra: Path) -> tuple[int, subprocess.Popen[bytes], list[int]]:
    """The job started and ready: its PID, Popen, and every PID of its tree (tracked)."""
    job = procs.start([world.exe, world.out, world.ready, world.go, world.data, world.mapped, *extra])
    pid = procs.track(read_pid(world.ready))
    tree = [procs.track(p) for p in selfcheck.job_pids(pid)]
    return pid, job, tree


def checkpoint_and_kill(world: World, store: Path, procs: Procs, mode: str) -> int:
    pid, job, tree = start(world, procs)
    selfcheck.dump(store, pid, mode)
    for p in tree:
        selfcheck.wait_gone(p, job)
    return pid


# ---------------------------------------------------------------- ways to change a file unnoticed by size and mtime

def _flipped(content: bytes) -> bytes:
    at = len(content) // 2
    return content[:at] + bytes(b ^ 0xFF for b in content[at:at + 16]) + content[at + 16:]


def _set_back(path: Path, then: os.stat_result) -> None:
    os.utime(path, ns=(then.st_atime_ns, then.st_mtime_ns))
    now = path.stat()
    assert (now.st_size, now.st_mtime_ns) == (then.st_size, then.st_mtime_ns), "size or mtime still tell"


def change_in_place(path: Path) -> None:
    """Same-length different bytes written into the file, its times set back (touch -d)."""
    then = path.stat()
    with open(path, "r+b") as f:
        content = f.read()
        f.seek(0)
        f.write(_flipped(content))
    _set_back(path, then)


def replace_by_rename(path: Path) -> None:
    """A changed copy renamed over the file (what editors and `cp` to a temporary, `mv` do)."""
    then = path.stat()
    new = path.with_name(path.name + ".new")
    new.write_bytes(_flipped(path.read_bytes()))
    new.chmod(then.st_mode & 0o7777)
    _set_back(new, then)
    new.rename(path)


def delete_and_recreate(path: Path) -> None:
    """The file removed and written again under its name (the filesystem may reuse the inode number)."""
    then = path.stat()
    content = _flipped(path.read_bytes())
    path.unlink()
    path.write_bytes(content)
    path.chmod(then.st_mode & 0o7777)
    _set_back(path, then)


CHANGES = {"in place": change_in_place, "renamed over": replace_by_rename, "deleted and recreated": delete_and_recreate}


@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("how", CHANGES)
@pytest.mark.parametrize("what", ["data file", "mapped file", "executable"])
def test_changed_file_refuses_the_restore(world: World, store: Path, procs: Procs, mode: str, what: str,
                                          how: str) -> None:
    pid = checkpoint_and_kill(world, store, procs, mode)
    path = world.target(what)
    CHANGES[how](path)
    result = incr(store, "restore", "--detach", timeout=selfcheck.TIMEOUT)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{path} changed since the checkpoint" in lines[0], lines[0]
    if how == "in place":
        assert "inode change time" in lines[0], lines[0]
    if how == "renamed over":
        assert "another file" in lines[0], lines[0]
    assert not os.path.exists(f"/proc/{pid}"), "a refused restore made the job's process"
    assert not world.out.exists(), "the job ran"


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_unchanged_world_restores(world: World, store: Path, procs: Procs, mode: str) -> None:
    """The control: nothing changed (the files read and the exe were only read meanwhile)."""
    checkpoint_and_kill(world, store, procs, mode)
    for path in (world.data, world.mapped, world.exe):
        path.read_bytes()
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, world.out, world.go))


def checkpoint_running(store: Path, pid: int, mode: str) -> None:
    """A checkpoint the job runs on from (`mode` as selfcheck.dump, without its final --kill)."""
    if mode == "incremental":
        ok(incr(store, "predump", pid, timeout=selfcheck.TIMEOUT))
    ok(incr(store, "checkpoint", pid, timeout=selfcheck.TIMEOUT))


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_output_written_after_the_checkpoint_restores(world: World, tmp_path: Path, store: Path, procs: Procs,
                                                      mode: str) -> None:
    """The job writes its output after the checkpoint (size, mtime and ctime move), then dies by
    kill -9: the output is truncated back and written again, as before, even where a process of
    the job holds it read-only (a reader child): a file the job writes is not an input."""
    output, more, wrote = tmp_path / "result.txt", tmp_path / "more", tmp_path / "wrote"
    pid, job, tree = start(world, procs, output, more, wrote)
    assert len(tree) == 2, tree
    checkpoint_running(store, pid, mode)
    more.touch()
    wait_until(wrote.exists, "the job to write after the checkpoint")
    assert output.read_bytes() == b"before\nafter\n"
    for p in tree:
        os.kill(p, signal.SIGKILL)
    for p in tree:
        selfcheck.wait_gone(p, job)
    wrote.unlink()
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, world.out, world.go))
    assert output.read_bytes() == b"before\nafter\n"


# ---------------------------------------------------------------- credentials (item 7)

@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory nobody can write (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="incr-h14-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


NOBODY_WITH_NOTHING = ("prlimit", "--nofile=512:1024", "--core=0:0", "--",
                       "setpriv", "--reuid", "65534", "--regid", "65534", "--groups", "65534", "--inh-caps", "-all",
                       "--ambient-caps", "-all", "--bounding-set", "-all", "--nnp")


@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_restore_by_root_gives_nobody_nothing_more(cprog: Callable[..., Path], open_dir: Path, store: Path,
                                                   procs: Procs, mode: str) -> None:
    """Uid, Gid, Groups, the five capability sets and NoNewPrivs in the restored job's
    /proc/self/status read as they did at the start, though root (all capabilities) restores it;
    so do its resource limits (hard ones below root's), and it holds no descriptor of incr's."""
    if os.geteuid() != 0:
        pytest.skip("the point is a restore by root")
    out, ready, go = open_dir / "out.txt", open_dir / "ready", open_dir / "go"
    job = procs.start([*NOBODY_WITH_NOTHING, cprog("nobody"), out, ready, go])
    pid = procs.track(read_pid(ready))
    selfcheck.dump(store, pid, mode)
    selfcheck.wait_gone(pid, job)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))
