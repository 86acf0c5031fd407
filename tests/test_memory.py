"""Memory fidelity and deduplication, against live processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

from conftest import Procs, incr, ok, read_pid, wait_exit, wait_until

UNREADABLE = ("[vvar]", "[vvar_vclock]", "[vsyscall]")
RSEQ_AREA = 32


def coalesced_maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    """(start, end, perms, offset, path) with adjacent compatible entries merged (VMA merging is invisible)."""
    out: list[tuple[int, int, str, int, str]] = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        perms, off, path = parts[1], int(parts[2], 16), parts[5] if len(parts) > 5 else ""
        if out:
            s, e, p, o, name = out[-1]
            if e == lo and p == perms and name == path and (not path.startswith("/") or o + (e - s) == off):
                out[-1] = (s, hi, p, o, name)
                continue
        out.append((lo, hi, perms, off, path))
    return out


def memory_digests(pid: int, maps: list[tuple[int, int, str, int, str]], rseq: int) -> dict[int, str]:
    """sha256 of every mapping; the rseq area (which the kernel rewrites when the
    process changes CPU) is read as zeros."""
    digests = {}
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for start, end, _perms, _off, path in maps:
            if path in UNREADABLE:
                continue
            h = hashlib.sha256()
            for at in range(start, end, 16 << 20):
                chunk = bytearray(os.pread(fd, min(16 << 20, end - at), at))
                if at <= rseq < at + len(chunk):
                    chunk[rseq - at:rseq - at + RSEQ_AREA] = bytes(RSEQ_AREA)
                h.update(chunk)
            digests[start] = h.hexdigest()
    finally:
        os.close(fd)
    return digests


def test_restored_memory_is_identical(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(20 * 4096))
    ready, result = tmp_path / "ready", tmp_path / "result"
    job = procs.start([cprog("memlayout"), data, ready, result])
    read_pid(ready)
    # The job sleeps in pause(): its memory after the checkpoint is its memory at it.
    info = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    shown = json.loads(ok(incr(store, "inspect", info["id"], "--json")).stdout)
    rseq = int(shown["processes"][0]["threads"][0]["rseq"], 16)
    maps = coalesced_maps(job.pid)
    digests = memory_digests(job.pid, maps, rseq)
    job.kill()
    job.wait()
    res = ok(incr(store, "restore", "--leave-stopped"))
    pid = procs.track(int(res.stdout))
    assert pid == job.pid
    wait_until(lambda: "State:\tT" in Path(f"/proc/{pid}/status").read_text(), "the restored job to be stopped")

    restored = coalesced_maps(pid)
    assert restored == maps
    assert memory_digests(pid, restored, rseq) == digests

    # And the process agrees: every region still has its checksum.
    # Resumed, it re-enters the pause() it was checkpointed in; a signal arriving
    # before that would run its handler first and pause() would then wait on.
    os.kill(pid, signal.SIGCONT)
    wait_until(lambda: "do_sys_pause" in Path(f"/proc/{pid}/wchan").read_text(), "the job to be back in pause()")
    os.kill(pid, signal.SIGUSR1)
    status = wait_exit(pid)
    assert result.exists(), f"the restored job ended without a verdict: status {status:#x}"
    assert result.read_text() == "ok\n"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_second_checkpoint_of_idle_process_adds_almost_nothing(cprog, tmp_path: Path, store: Path,
                                                               procs: Procs) -> None:
    ready = tmp_path / "ready"
    job = procs.start([cprog("idle"), 64, "random", ready])
    read_pid(ready)
    first = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    second = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert first["pages_total"] >= 64 * 256
    assert first["bytes_stored"] >= 64 << 20           # random data: stored raw, once
    assert second["pages_total"] >= 64 * 256
    assert second["bytes_stored"] <= first["bytes_stored"] // 100
    assert second["parent"] == first["id"]


def test_mostly_zero_memory_adds_almost_nothing(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    ready = tmp_path / "ready"
    job = procs.start([cprog("idle"), 256, "zero", ready])
    read_pid(ready)
    info = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert info["pages_total"] >= 256 * 256
    assert info["pages_zero"] >= 256 * 256
    assert info["bytes_stored"] < 1 << 20
