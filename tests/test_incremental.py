"""Incremental checkpoints end to end: a job checkpointed again and again, each
checkpoint restored in turn and run to the end; pre-dump then checkpoint as
two commands; layered page maps staying bounded."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import selfcheck

from conftest import Procs, incr, kill_and_wait_gone, line_count, ok, wait_until
from incr import dirty, precopy
from incr.engine.memory import PAGE, PageRun, batches
from incr.pagestore import HOLE_DIGEST, Layer, Store, layers
from incr.proto import image_pb2

STEPS, EVERY = 60, 5


def stepper_reference(exe: Path, tmp: Path, procs: Procs) -> bytes:
    d = tmp / "reference"
    d.mkdir()
    p = procs.start([exe, d / "out.txt", STEPS, 0, d])
    assert p.wait(timeout=300) == 0
    return (d / "out.txt").read_bytes()


@pytest.mark.parametrize("tracker,count", [("auto", 10), ("hash", 3)])
def test_each_of_many_checkpoints_restores_to_an_identical_run(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                tracker: str, count: int) -> None:
    exe = cprog("stepper")
    expected = stepper_reference(exe, tmp_path, procs)
    d = tmp_path / "run"
    d.mkdir()
    out = d / "out.txt"
    job = procs.start([exe, out, STEPS, EVERY, d])
    ids = []
    for k in range(1, count + 1):
        (d / f"go{k - 1}").touch()
        wait_until(lambda k=k: line_count(out) >= k * EVERY, f"the job to reach gate {k}")
        info = json.loads(ok(incr(store, "checkpoint", job.pid, "--json", "--tracker", tracker)).stdout)
        ids.append(info["id"])
        assert info["kind"] == "checkpoint" and info["tracker"] == dirty.choose(tracker).name
        if k > 1:
            assert info["parent"] == ids[-2]
            if tracker != "hash":
                # incremental: a fraction of the job's pages changed between gates
                assert info["pages_dirty"] < info["pages_total"] // 2, info
    listed = json.loads(ok(incr(store, "list", "--json")).stdout)
    assert [c["id"] for c in listed] == ids
    for c in listed:
        assert {"pages_dirty", "bytes_stored", "downtime_ms", "tracker", "rounds"} <= set(c)
    kill_and_wait_gone(job.pid)
    job.wait()
    for i in range(STEPS // EVERY + 1):
        (d / f"go{i}").touch()
    for k, cid in enumerate(ids, start=1):
        res = incr(store, "restore", "--id", cid)
        assert res.returncode == 0, f"checkpoint {k}: {res.stderr}"
        assert out.read_bytes() == expected, f"checkpoint {k} did not finish like an uninterrupted run"
    # Bounded maps: no region of the newest checkpoint has more than a handful of layers.
    with Store.open(store) as st:
        _, newest = st.load(ids[-1])
        assert max(len(ref.layers) for ref in newest.page_maps) <= 8


def test_predump_then_checkpoint_copies_only_what_was_written_between(cprog, tmp_path: Path, store: Path,
                                                                      procs: Procs) -> None:
    if not dirty.probe().uffd_wp and not dirty.probe().soft_dirty:
        pytest.skip("needs a kernel dirty-page tracker (uffd-wp or soft-dirty)")
    p = procs.start([cprog("memops")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdin is not None and p.stdout is not None

    def cmd(*args: object) -> int:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write((" ".join(map(str, args)) + "\n").encode())
        p.stdin.flush()
        return int(p.stdout.readline())

    P = 4096
    a = cmd("mmap", 4096 * P, 3, 0x22)
    assert cmd("write", a, 4096, 1) == 0
    first = json.loads(ok(incr(store, "predump", p.pid, "--json")).stdout)
    assert first["kind"] == "predump" and first["pages_dirty"] >= 4096
    # The job's own bookkeeping for 100 commands (stdio buffers, stack, libc data), measured:
    for _ in range(100):
        assert cmd("read", a, 0) == 0
    pre = json.loads(ok(incr(store, "predump", p.pid, "--json")).stdout)
    bookkeeping = pre["pages_dirty"]
    assert pre["parent"] == first["id"] and bookkeeping < 32
    for i in range(0, 300, 3):                      # 100 pages, scattered
        assert cmd("write", a + i * P, 1, 7) == 0
    ck = json.loads(ok(incr(store, "checkpoint", p.pid, "--json")).stdout)
    assert ck["parent"] == pre["id"]
    assert abs(ck["pages_dirty"] - (100 + bookkeeping)) <= 2, (ck, bookkeeping)
    assert ck["pages_total"] >= 4096
    # a pre-dump is not restorable
    res = incr(store, "restore", "--id", pre["id"])
    assert res.returncode == 1 and "pre-dump" in res.stderr


def test_layers_stay_logarithmic_and_reads_bounded() -> None:
    blobs: dict[str, bytes] = {}

    def write(data: bytes) -> str:
        key = f"{len(blobs):032x}"
        blobs[key] = data
        return key

    full = {i: bytes([i % 251]) * 16 for i in range(4096)}
    stack = layers.push([], dict(full), blobs.__getitem__, write)
    truth = dict(full)
    written = 0
    for n in range(1, 500):
        delta = {(n * 37 + j) % 4096: bytes([n % 256, j]) * 8 for j in range(3)}
        if n % 10 == 0:
            delta[(n * 13) % 4096] = HOLE_DIGEST
        before = len(blobs)
        stack = layers.push(stack, delta, blobs.__getitem__, write)
        written += sum(len(blobs[k]) for k in list(blobs)[before:])
        for page, digest in delta.items():
            if digest == HOLE_DIGEST:
                truth.pop(page, None)
            else:
                truth[page] = digest
        assert len(stack) <= 14, f"{len(stack)} layers after {n} deltas"
        assert sum(layer.entries for layer in stack) <= 2 * len(truth) + 64
    assert layers.read_region([Layer(entries=x.entries, blob=x.blob) for x in stack], blobs.__getitem__) == truth
    # 499 deltas of ~3 pages: the bytes written stay a small multiple of what changed, not of the region
    assert written < 499 * 3 * 16 * 40


def test_version_1_manifests_are_read_as_one_layer() -> None:
    from incr.proto import store_pb2

    ref = store_pb2.PageMapRef(region="1:1000", blob="ab" * 16, pages=7)
    assert [(x.blob, x.entries) for x in layers.region_layers(ref)] == [("ab" * 16, 7)]


@dataclass
class Stepper:
    job: subprocess.Popen[bytes]
    dir: Path
    expected: bytes          # output of an uninterrupted run


@pytest.fixture
def stepper(cprog, tmp_path: Path, procs: Procs) -> Stepper:
    """A stepper job waiting at its second gate, and what an uninterrupted run prints."""
    exe = cprog("stepper")
    expected = stepper_reference(exe, tmp_path, procs)
    d = tmp_path / "run"
    d.mkdir()
    job = procs.start([exe, d / "out.txt", STEPS, EVERY, d])
    (d / "go0").touch()
    wait_until(lambda: line_count(d / "out.txt") >= EVERY, "the job to reach gate 1")
    return Stepper(job, d, expected)


def finish_from(store: Path, cid: str, job: subprocess.Popen[bytes], d: Path) -> bytes:
    kill_and_wait_gone(job.pid)
    job.wait()
    for i in range(STEPS // EVERY + 1):
        (d / f"go{i}").touch()
    res = incr(store, "restore", "--id", cid)
    assert res.returncode == 0, res.stderr
    return (d / "out.txt").read_bytes()


def test_lost_tracker_state_means_a_full_pass_never_a_lost_page(stepper: Stepper, tmp_path: Path,
                                                                  store: Path) -> None:
    job, d = stepper.job, stepper.dir
    first = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    for f in (tmp_path / "incr-runtime").glob("tracker-*.json"):
        f.unlink()                                   # the tracker's record is gone (reboot of /run, ...)
    (d / "go1").touch()
    wait_until(lambda: line_count(d / "out.txt") >= 2 * EVERY, "the job to reach gate 2")
    second = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert second["parent"] == first["id"]
    assert second["pages_dirty"] == second["pages_total"], "without its record the tracker must take everything"
    fds = [os.readlink(f"/proc/{job.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{job.pid}/fd")]
    assert fds.count("anon_inode:[userfaultfd]") <= 1, "the parked tracker must be reused, not doubled"
    assert finish_from(store, second["id"], job, d) == stepper.expected


def test_final_copy_larger_than_the_buffer_is_streamed_while_frozen(stepper: Stepper, store: Path) -> None:
    res = incr(store, "checkpoint", stepper.job.pid, "--json", "--no-precopy", "--copy-buffer", "4M")
    assert res.returncode == 0, res.stderr
    assert "exceeds the copy buffer (4 MiB)" in res.stderr
    info = json.loads(res.stdout)
    assert info["pages_total"] > 4 * 256
    assert finish_from(store, info["id"], stepper.job, stepper.dir) == stepper.expected


def test_bad_copy_buffer_size_is_a_usage_error(store: Path) -> None:
    res = incr(store, "checkpoint", "1", "--copy-buffer", "lots")
    assert res.returncode == 2 and "cannot read size 'lots'" in res.stderr


def test_a_predump_whose_copy_lost_a_vanished_mapping_is_no_base(tmp_path: Path, procs: Procs) -> None:
    """A predump collects (consumes) the job's dirt, then copies it while the job runs: a mapping
    the job unmaps or moves meanwhile cannot be copied.  Such a predump committed as the tracker's
    base made the next checkpoint miss every page unchanged since the job's start (its first
    pass found nothing copied: the stack's argv strings came back zero, the job looked for a GO
    file named "" for ever).  Such a predump now leaves the tracker with no base: the next pass is
    a full one.  The job replaces mappings without
    pause; first-pass predumps are taken until one meets a vanished mapping (the path under
    test); the job then calms down and is checkpointed twice, and the restored job's own checks
    must hold."""
    exe = tmp_path / "churn"
    subprocess.run(["gcc", "-O2", "-Wall", "-DPAGES=2048", "-o", str(exe),
                    str(Path(__file__).parent / "programs" / "conformance" / "mem_remap_churn.c")], check=True)
    work = tmp_path / "work"
    work.mkdir()
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, work)
    for attempt in range(40):
        # A store of its own each time: the predump is a first pass (every page of every VMA).
        store = tmp_path / f"store{attempt}"
        res = ok(incr(store, "-v", "predump", pid))
        if "the round's VMAs are taken whole" in res.stderr:
            break
    else:
        pytest.fail("40 predumps and the job never unmapped a mapping under one's copy")
    (work / "calm").touch()                 # the checkpoints' own rounds must not fail too (they
    wait_until((work / "calmed").exists, "the job to stop replacing mappings")    # would mask it)
    ok(incr(store, "checkpoint", pid))
    ok(incr(store, "checkpoint", pid, "--kill"))
    selfcheck.wait_gone(pid, job)
    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go))


def test_a_rounds_batches_leave_out_exactly_the_pages_written_again() -> None:
    """The pre-copy round's arithmetic: runs regrouped into buffer-sized batches with packed
    offsets; the pages outside the written runs kept, in order, with offsets packed again."""
    assert dirty.unwritten(10, 10, []) == [(10, 10)]
    assert dirty.unwritten(10, 10, [(0, 11), (13, 2), (19, 5)]) == [(11, 2), (15, 4)]
    assert dirty.unwritten(10, 10, [(0, 30)]) == []
    runs = [PageRun(0, 0, 5, 0), PageRun(0, 7, 1, -1), PageRun(1, 100, 6, 5 * PAGE)]
    got = list(batches(runs, 4))
    assert got == [[PageRun(0, 0, 4, 0)], [PageRun(0, 4, 1, 0), PageRun(0, 7, 1, -1)],
                   [PageRun(1, 100, 4, 0)], [PageRun(1, 104, 2, 0)]], got
    assert list(batches(runs, 4, from_zero=False)) == [
        [PageRun(0, 0, 4, 0)], [PageRun(0, 4, 1, 4 * PAGE), PageRun(0, 7, 1, -1)],
        [PageRun(1, 100, 4, 5 * PAGE)], [PageRun(1, 104, 2, 9 * PAGE)]]
    vmas = [image_pb2.Vma(start=0x10000, end=0x100000, kind=image_pb2.Vma.ANON),
            image_pb2.Vma(start=0x200000, end=0x300000, kind=image_pb2.Vma.ANON)]
    written = {0x10000: [(1, 2)], 0x200000: [(100, 6)]}
    asked = []

    def rewritten(vma: image_pb2.Vma, first: int, count: int) -> list[tuple[int, int]]:
        asked.append((vma.start, first, count))
        return written[vma.start]
    batch = [PageRun(0, 0, 5, 0), PageRun(0, 7, 1, -1), PageRun(1, 100, 6, 5 * PAGE)]
    kept, left_out = precopy._still_clean(batch, vmas, rewritten)
    assert kept == [PageRun(0, 0, 1, 0), PageRun(0, 3, 2, PAGE), PageRun(0, 7, 1, -1)], kept
    assert left_out == 2 + 6
    assert sorted(asked) == [(0x10000, 0, 5), (0x200000, 100, 6)], "one look per VMA of the batch"


def test_a_copy_of_scattered_runs_is_stored_in_batches_each_page_under_its_digest(tmp_path: Path) -> None:
    """Collector.add_copy: runs of a page or two across VMAs are stored a batch per call (one look
    at rewritten pages per VMA and batch), and every kept page's view entry is its own digest."""
    import mmap
    import random

    from incr.engine.memory import MemoryCopy
    from incr.pagestore import ZERO_DIGEST
    from incr.pagestore.digest import page_digest
    from incr.snapshot import PROGRESS_BATCH_PAGES, Collector

    rng = random.Random(7)
    vmas = [image_pb2.Vma(start=0x10000000, end=0x20000000, kind=image_pb2.Vma.ANON),
            image_pb2.Vma(start=0x30000000, end=0x40000000, kind=image_pb2.Vma.ANON)]
    runs, offset, page = [], 0, 0
    while offset < (PROGRESS_BATCH_PAGES * 2 + 100) * PAGE:
        page += rng.randrange(2, 5)
        count = rng.randrange(1, 3)
        runs.append(PageRun(len(runs) % 2, page, count, offset))
        offset += count * PAGE
    runs.append(PageRun(0, page + 10, 3, -1))
    buffer = mmap.mmap(-1, offset)
    buffer[:] = rng.randbytes(offset)
    rewritten_pages = {(run.vma, run.first) for run in runs[::5] if run.offset >= 0}
    asked: list[tuple[int, int, int]] = []

    def rewritten(vma: image_pb2.Vma, first: int, count: int) -> list[tuple[int, int]]:
        asked.append((vma.start, first, count))
        i = vmas.index(vma)
        return sorted((p, 1) for v, p in rewritten_pages if v == i and first <= p < first + count)

    store = Store.open(tmp_path / "store", create=True)
    with store.writer() as writer:
        collector = Collector(writer)
        calls = []
        add_pages = writer.add_pages
        writer.add_pages = lambda *a: calls.append(1) or add_pages(*a)      # type: ignore[method-assign]
        left_out = collector.add_copy(vmas, MemoryCopy(runs, buffer, offset), rewritten)
    store.close()
    assert left_out == len(rewritten_pages)
    assert len(calls) == 3, "a call per batch of PROGRESS_BATCH_PAGES pages, not per run"
    assert len(asked) == 2 * 3, "a look per VMA and batch"
    for run in runs:
        view = collector.views[vmas[run.vma].start]
        for i in range(run.count):
            p = run.first + i
            if run.offset < 0:
                assert view.entries[p] == ZERO_DIGEST
            elif (run.vma, p) in rewritten_pages:
                assert p not in view.entries
            else:
                at = run.offset + i * PAGE
                assert view.entries[p] == page_digest(buffer[at : at + PAGE]), (run, i)
    assert collector.copied == sum(r.count for r in runs if r.offset >= 0) - left_out
