"""Writable MAP_SHARED mappings of ordinary files: their data lives in the file, which the job
goes on writing after a checkpoint; a restore maps the file again as it is, not rewound (only a
file shortened or replaced meanwhile refuses it).  A job killed by its checkpoint ends as an
uninterrupted run does; one that ran on past it first (the node died later) ends with the same
file, its writes being the same ones again, though what it read meanwhile saw them early."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from conftest import Procs, incr, line_count, ok, wait_until

JOB = r"""
import hashlib, mmap, os, sys
out, gate, data = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(data, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20)
with open(out, "w") as f:
    for r in range(40):
        if r == 20:
            while not os.path.exists(gate):
                sum(range(1000))
        block = hashlib.sha256(bytes(m[:4096]) + bytes([r])).digest() * 128
        m[(r % 64) * 4096 : (r % 64) * 4096 + 4096] = block
        f.write(f"{r} {hashlib.sha256(m[:]).hexdigest()}\n")
        f.flush()
"""


def _run(tmp_path: Path, procs: Procs, name: str, gate_open: bool) -> tuple[Path, Path, Path, object]:
    d = tmp_path / name
    d.mkdir()
    out, gate, data = d / "out.txt", d / "gate", d / "data"
    if gate_open:
        gate.touch()
    job = procs.start([sys.executable, "-c", JOB, out, gate, data])
    return out, gate, data, job


@pytest.mark.parametrize("dump", ["kill", "after-more-writes"])
def test_a_job_writing_a_file_through_a_shared_mapping_ends_as_an_uninterrupted_run(
        dump: str, tmp_path: Path, store: Path, procs: Procs) -> None:
    ref, _gate, ref_data, ref_job = _run(tmp_path, procs, "ref", gate_open=True)
    assert ref_job.wait(timeout=300) == 0                          # type: ignore[attr-defined]
    out, gate, data, job = _run(tmp_path, procs, "run", gate_open=False)
    pid = procs.track(job.pid)                                     # type: ignore[attr-defined]
    wait_until(lambda: line_count(out) >= 20, "the job to reach its gate")
    ok(incr(store, "checkpoint", pid))
    if dump == "after-more-writes":
        gate.touch()                                   # it runs on, writing the file, and ends
        assert job.wait(timeout=300) == 0              # type: ignore[attr-defined]
        gate.unlink()
        out.write_text("".join(out.read_text().splitlines(keepends=True)[:20]))
    else:
        ok(incr(store, "checkpoint", pid, "--kill"))
        job.wait(timeout=60)                           # type: ignore[attr-defined]
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), "the job to be gone")
    gate.touch()
    res = incr(store, "restore", timeout=300)
    assert res.returncode == 0, res.stderr
    if dump == "kill":
        assert out.read_bytes() == ref.read_bytes()
    else:
        assert out.read_text().splitlines()[-1] == ref.read_text().splitlines()[-1]
    assert hashlib.sha256(data.read_bytes()).digest() == hashlib.sha256(ref_data.read_bytes()).digest()


def test_a_shortened_mapped_file_refuses_the_restore_in_one_line(tmp_path: Path, store: Path, procs: Procs) -> None:
    out, _gate, data, job = _run(tmp_path, procs, "run", gate_open=False)
    pid = procs.track(job.pid)                                     # type: ignore[attr-defined]
    wait_until(lambda: line_count(out) >= 20, "the job to reach its gate")
    ok(incr(store, "checkpoint", pid, "--kill"))
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") or job.poll() is not None, "the job to be gone")  # type: ignore[attr-defined]
    os.truncate(data, 4096)
    res = incr(store, "restore", "--detach")
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res
    assert str(data) in res.stderr and "shortened" in res.stderr, res.stderr
    assert not os.path.exists(f"/proc/{pid}")
