"""The benchmark workloads (benchmarks/workloads/, incr/bench/workloads.py): each one runs,
reports progress, passes its own self-check, goes through real incr checkpoints (a pre-copy
round, a full and an incremental one) and a restore of the last, and passes it again; and
its self-check does see a damaged page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import Procs, incr, ok, wait_until
from incr.bench.workloads import WORKLOADS, Running, WorkloadFailed

SIZE_MIB = {"shm": 24}          # the others at 16 MiB; shm's is split over three processes
SEED = 11


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workloads")


def start(name: str, build_dir: Path, tmp_path: Path, procs: Procs) -> Running:
    job = Running.start(WORKLOADS[name], build_dir, tmp_path / "run", SIZE_MIB.get(name, 16), SEED)
    track_tree(job, procs)
    return job


def track_tree(job: Running, procs: Procs) -> None:
    """The procs fixture ends them too, should the test fail before job.stop()."""
    procs.track(job.pid)
    for tid in Path(f"/proc/{job.pid}/task").iterdir():
        for child in (tid / "children").read_text().split():
            procs.track(int(child))


def wait_progress(job: Running, beyond: int, what: str) -> int:
    wait_until(lambda: job.iterations() > beyond, what)
    return job.iterations()


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_checks_itself_through_an_incr_checkpoint_and_restore(name: str, build_dir: Path, tmp_path: Path,
                                                                      store: Path, procs: Procs) -> None:
    job = start(name, build_dir, tmp_path, procs)
    try:
        wait_progress(job, job.iterations(), f"{name} to make progress")
        before = job.check()
        assert before > 0
        wait_until(lambda: job.rate(0.05) > 0, f"{name} to show a rate")
        # As incr run does all day: a pre-copy round, a checkpoint, then an incremental one; the job runs on.
        ok(incr(store, "predump", job.pid))
        ok(incr(store, "checkpoint", job.pid))
        wait_progress(job, job.iterations(), f"{name} to go on after its checkpoint")
        ok(incr(store, "checkpoint", job.pid))
        wait_progress(job, job.iterations(), f"{name} to go on after its incremental checkpoint")
        checkpointed = time.time()
        job.stop()
        restoring = time.time()
        res = ok(incr(store, "restore", "--latest", "--detach"))
        pid = procs.track(int(res.stdout.split()[-1]))
        assert pid == job.pid, "incr restores the job under its own PID"
        job.adopt(pid)
        track_tree(job, procs)
        after = job.check()
        assert after >= before
        wait_progress(job, after, f"{name} to make progress after its restore")
        # Dead from the checkpoint's freeze (before `checkpointed`) until the restore (after `restoring`):
        # the probe's next wake-up saw all of that as one gap.
        gaps = job.stalls(checkpointed, time.time())
        assert gaps and max(gaps) >= (restoring - checkpointed) * 1e3, gaps
    finally:
        job.stop()


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_self_check_sees_a_damaged_page(name: str, build_dir: Path, tmp_path: Path, procs: Procs) -> None:
    job = start(name, build_dir, tmp_path, procs)
    try:
        assert job.check() > 0
        damage(job.pid)
        with pytest.raises(WorkloadFailed, match="self-check failed"):
            job.check()
    finally:
        job.stop()


def damage(pid: int) -> None:
    """Overwrites 1 KiB in the second half of the pages at 1/4 and 3/4 of each writable mapping of
    `pid` that holds at least 3/4 as much memory as the largest: the job's data (both grids of a
    solver, whether or not the kernel merged them into one mapping), never a stack or the heap."""
    for start, end in data_mappings(pid):
        pages = (end - start) // 4096
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
            for page in (pages // 4, pages * 3 // 4):
                mem.seek(start + page * 4096 + 2048)
                mem.write(b"A" * 1024)


def data_mappings(pid: int) -> list[tuple[int, int]]:
    found: list[tuple[int, int, int]] = []          # (Rss in KiB, start, end)
    current: tuple[int, int] | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            current = (lo, hi) if fields[1].startswith("rw") else None
        elif fields[0] == "Rss:" and current is not None:
            found.append((int(fields[1]), *current))
    largest = max(rss for rss, _, _ in found)
    return [(lo, hi) for rss, lo, hi in found if rss * 4 >= largest * 3]


def test_precopy_of_a_hot_loop_stores_its_pages_once(build_dir: Path, tmp_path: Path, store: Path,
                                                     procs: Procs) -> None:
    """Every page is written again before a pre-copy round has stored it: the round leaves them
    to the freeze instead of storing them twice, and stops; the restore is exact."""
    job = start("hotloop", build_dir, tmp_path, procs)
    try:
        wait_progress(job, job.iterations(), "hotloop to make progress")
        ok(incr(store, "checkpoint", job.pid))
        frozen_only = json.loads(ok(incr(store, "checkpoint", job.pid, "--no-precopy", "--json")).stdout)
        reached = wait_progress(job, job.iterations(), "hotloop to go on")
        precopy = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
        pages = 16 * 256
        assert precopy["precopy_rewritten"] > pages // 2, precopy
        # The dirty set cannot shrink while the job keeps pace: one round.  On a loaded machine the
        # job may fall behind the first round, which then sees a smaller set and tries a second.
        assert precopy["rounds"] <= 2, "a dirty set that does not shrink stops the rounds"
        # Stored twice, it would be 2x (the round's copy, then the freeze's); some pages of the
        # round's first batch may still be stored before the job reaches them.
        assert precopy["bytes_stored"] < 1.5 * frozen_only["bytes_stored"], (precopy, frozen_only)
        job.stop()
        res = ok(incr(store, "restore", "--latest", "--detach"))
        job.adopt(procs.track(int(res.stdout.split()[-1])))
        assert job.check() >= reached          # every page of the pass it was frozen in
    finally:
        job.stop()
