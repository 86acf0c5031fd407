"""A store you can trust: damage is reported by `incr verify` and never becomes wrong memory
(`restore` refuses, `--fallback` walks back to the newest intact checkpoint); a wrong index
is rebuilt and the read retried; `forget`/`prune` keep what the policy says and free the rest.

Every test works on a copy of one store of ten checkpoints of the xorjob (tests/xorjob.py),
whose memory after each iteration is known: a restored job's digest must be the reference.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lmdb
import pytest
from xorjob import Job, assert_memory_exact

from conftest import Procs, incr, kill_and_wait_gone, listed_here, ok, read_pid, verify_here
from incr.faults import GC_POINTS
from incr.pagestore import Store
from incr.pagestore.index import LOCATION, Index
from incr.pagestore.layers import read_region, region_layers
from incr.pagestore.pack import iter_pack_files, parse_pack
from incr.proto import store_pb2

PAGES = 2048            # 8 MiB: each checkpoint rewrites a good part of it
CHECKPOINTS = 10


@dataclass
class Original:
    """The store as built, the job's executable, and what each checkpoint added."""

    store: Path
    exe: Path
    report: Path                     # where the job (and every restored copy) reports
    pid: int
    ids: list[str]                   # oldest first
    packs_of: dict[str, set[str]]    # checkpoint id -> packs it wrote


@pytest.fixture(scope="module")
def original(cprog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Original]:
    exe = cprog("xorjob")
    top = tmp_path_factory.mktemp("trust")
    store, report, ready = top / "store", top / "report", top / "ready"
    env = {"INCR_RUNTIME_DIR": str(top / "run")}
    procs = Procs()
    try:
        procs.start([exe, report, ready, PAGES])
        pid = procs.track(read_pid(ready))
        ids: list[str] = []
        packs_of: dict[str, set[str]] = {}
        for _ in range(CHECKPOINTS):
            before = {n for n, _ in iter_pack_files(store / "packs")}
            info = json.loads(ok(incr(store, "checkpoint", pid, "--json", env=env)).stdout)
            ids.append(info["id"])
            packs_of[info["id"]] = {n for n, _ in iter_pack_files(store / "packs")} - before
        kill_and_wait_gone(pid)
        yield Original(store, exe, report, pid, ids, packs_of)
    finally:
        procs.cleanup()


@pytest.fixture
def copy(original: Original, tmp_path: Path) -> Path:
    """A private copy of the original store, as incr left it (its index rebuilt and sealed)."""
    target = tmp_path / "store"
    shutil.copytree(original.store, target)
    Store.open(target).close()           # a copy's index is rebuilt once (its seal names the old file)
    return target


def restore_and_check(original: Original, store: Path, procs: Procs, tmp_path: Path, *args: str,
                      expect: str | None = None) -> subprocess.CompletedProcess[str]:
    """Restore (detached) and check the restored job's memory against the reference."""
    res = ok(incr(store, "restore", "--detach", *args))
    pid = procs.track(int(res.stdout.split()[-1]))
    assert pid == original.pid
    job = Job(original.exe, original.report, pid, PAGES)
    assert_memory_exact(job, f"restore {' '.join(args)}")
    if expect is not None:
        assert expect[:12] in res.stderr, res.stderr
    kill_and_wait_gone(pid)
    return res


def refused(store: Path, *args: str) -> str:
    """A restore that must refuse in one line, with nothing left running."""
    res = incr(store, "restore", "--detach", *args)
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and lines[-1].startswith("incr restore: error:"), res.stderr
    assert res.stdout == ""
    return lines[-1]


def job_runs(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def verify(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = incr(store, "verify", *args)
    assert "Traceback" not in res.stderr, res.stderr
    return res


def newest_pack(original: Original, store: Path) -> Path:
    [name] = sorted(original.packs_of[original.ids[-1]])[:1]
    return store / "packs" / name[:2] / name


def flip_in_frame(pack: Path, frame: store_pb2.Frame) -> None:
    data = bytearray(pack.read_bytes())
    data[frame.offset + frame.length // 2] ^= 0x10
    pack.write_bytes(bytes(data))


def page_frames(pack: Path) -> list[store_pb2.Frame]:
    return [f for f in parse_pack(pack.read_bytes()).frames if f.kind == store_pb2.Frame.PAGES]


def used_pages(store: Path, checkpoint: str) -> set[bytes]:
    """The pages `checkpoint` needs (a pack also holds pages a pre-copy round stored that the
    job rewrote before the freeze: nothing references those)."""
    with Store.open(store) as st:
        _, snapshot = st.load(checkpoint)
        used: set[bytes] = set()
        for ref in snapshot.page_maps:
            used.update(read_region(region_layers(ref), st.read_blob).values())
    return used


def used_frames(pack: Path, used: set[bytes]) -> list[store_pb2.Frame]:
    return [f for f in page_frames(pack) if f.digests[:16] in used]


def test_the_original_store_verifies_and_every_checkpoint_restores_exactly(original: Original, copy: Path,
                                                                          procs: Procs, tmp_path: Path) -> None:
    res = verify(copy, "--read-data")
    assert res.returncode == 0, res.stdout
    assert "no problems" in res.stdout.splitlines()[-1]
    for checkpoint in (original.ids[0], original.ids[-1]):
        restore_and_check(original, copy, procs, tmp_path, "--id", checkpoint)


def test_a_flipped_byte_is_found_by_read_data_and_never_restored(original: Original, copy: Path,
                                                                procs: Procs, tmp_path: Path) -> None:
    pack = newest_pack(original, copy)
    frames = used_frames(pack, used_pages(copy, original.ids[-1]))
    flip_in_frame(pack, frames[len(frames) // 2])
    res = verify(copy, "--read-data", "--json")
    assert res.returncode == 1
    report = json.loads(res.stdout)
    bad = [s for s in report["snapshots"] if not s["ok"]]
    assert [s["id"] for s in bad] == [original.ids[-1]], bad
    assert pack.name in bad[0]["packs"]
    text = verify(copy, "--read-data").stdout
    assert f"checkpoint {original.ids[-1][:12]} is damaged" in text and pack.name[:16] in text, text
    line = refused(copy, "--latest")
    assert "damaged" in line and original.ids[-1][:12] in line and "--fallback" in line, line
    assert not job_runs(original.pid)
    res = restore_and_check(original, copy, procs, tmp_path, "--latest", "--fallback")
    assert original.ids[-2][:12] in res.stderr and "damaged" in res.stderr, res.stderr


def test_a_missing_pack_is_reported_by_name_and_the_checkpoints_before_it_restore(
        original: Original, copy: Path, procs: Procs, tmp_path: Path) -> None:
    pack = newest_pack(original, copy)
    pack.unlink()
    res = verify(copy)
    assert res.returncode == 1
    assert any(original.ids[-1][:12] in line and pack.name[:16] in line for line in res.stdout.splitlines()), \
        res.stdout
    # The older checkpoints do not use it: they are intact, and --id restores them without --fallback.
    report = json.loads(verify(copy, "--json").stdout)
    assert [s["id"] for s in report["snapshots"] if not s["ok"]] == [original.ids[-1]]
    line = refused(copy, "--id", original.ids[-1])
    assert "damaged" in line and original.ids[-1][:12] in line, line
    restore_and_check(original, copy, procs, tmp_path, "--id", original.ids[-3])
    restore_and_check(original, copy, procs, tmp_path, "--fallback", expect=original.ids[-2])
    listed = ok(incr(copy, "list")).stdout
    assert any(line.startswith(original.ids[-1][:12]) and line.endswith("incomplete") for line in
               listed.splitlines()), listed


def test_a_truncated_manifest_is_reported_and_never_skipped_silently(original: Original, copy: Path,
                                                                    procs: Procs, tmp_path: Path) -> None:
    manifest = copy / "snapshots" / original.ids[-1]
    manifest.write_bytes(manifest.read_bytes()[:-40])
    res = verify(copy)
    assert res.returncode == 1 and original.ids[-1][:12] in res.stdout and "manifest" in res.stdout, res.stdout
    line = refused(copy, "--id", original.ids[-1])
    assert original.ids[-1][:12] in line, line
    line = refused(copy, "--latest")                  # it may have been the newest: never skipped silently
    assert original.ids[-1][:12] in line and "--fallback" in line, line
    restore_and_check(original, copy, procs, tmp_path, "--latest", "--fallback", expect=original.ids[-2])


def test_a_damaged_page_map_refuses_the_checkpoint_that_uses_it(original: Original, copy: Path,
                                                               procs: Procs, tmp_path: Path) -> None:
    def layers_of(checkpoint: str) -> set[bytes]:
        snapshot = store_pb2.Snapshot.FromString((copy / "snapshots" / checkpoint).read_bytes())
        return {bytes.fromhex(layer) for ref in snapshot.page_maps for layer in ref.layers}

    # A layer of the newest checkpoint's own (a region it did not change keeps its parent's layers).
    top_layers = layers_of(original.ids[-1]) - layers_of(original.ids[-2])
    damaged = 0
    for _, path in iter_pack_files(copy / "packs"):
        for frame in parse_pack(path.read_bytes()).frames:
            if frame.kind == store_pb2.Frame.BLOB and frame.digests in top_layers and frame.length > 8:
                data = bytearray(path.read_bytes())
                end = frame.offset + frame.length          # this frame's last bytes, not the trailer's
                data[end - 3 : end] = data[end - 3 : end][::-1]
                data[frame.offset + 1] ^= 0x40
                path.write_bytes(bytes(data))
                damaged += 1
                break
        if damaged:
            break
    assert damaged
    assert verify(copy, "--read-data").returncode == 1
    line = refused(copy, "--id", original.ids[-1])
    assert "damaged" in line, line
    assert not job_runs(original.pid)
    restore_and_check(original, copy, procs, tmp_path, "--fallback")


def swap_index_entries(original: Original, store: Path) -> None:
    pack = newest_pack(original, store)
    a, b = (f.digests[:16] for f in used_frames(pack, used_pages(store, original.ids[-1]))[:2])
    env = lmdb.open(str(store / "index"), max_dbs=4, subdir=True)
    pages_db = env.open_db(b"pages")
    with env.begin(write=True) as txn:
        va, vb = txn.get(a, db=pages_db), txn.get(b, db=pages_db)
        assert va is not None and vb is not None and LOCATION.unpack_from(va)[0].hex() == pack.name
        txn.put(a, vb, db=pages_db)
        txn.put(b, va, db=pages_db)
    env.close()


def test_an_index_changed_outside_incr_is_rebuilt_before_it_is_read(original: Original, copy: Path,
                                                                    procs: Procs, tmp_path: Path) -> None:
    swap_index_entries(original, copy)
    res = verify(copy)
    assert res.returncode == 0 and "changed outside incr" in res.stderr and "rebuilt the index" in res.stderr, \
        (res.stdout, res.stderr)
    # Garbage in the file: LMDB would fault reading it (SIGBUS); it is never opened.
    data = copy / "index" / "data.mdb"
    raw = bytearray(data.read_bytes())
    for at in range(3 * 4096, len(raw), 4096):
        raw[at + 16 : at + 400] = os.urandom(384)
    data.write_bytes(bytes(raw))
    res = restore_and_check(original, copy, procs, tmp_path, "--latest")
    assert "changed outside incr" in res.stderr, res.stderr


def test_a_wrong_index_is_reported_and_never_followed(original: Original, copy: Path, procs: Procs,
                                                      tmp_path: Path) -> None:
    """An index wrong as incr itself left it (sealed: a bug, a crash the seal did not see): verify
    says so, and a restore finds the frame it reads holds another page, rebuilds and retries."""
    swap_index_entries(original, copy)
    Index(copy / "index")._seal()
    res = verify(copy)
    assert res.returncode == 1 and "index entries point at a frame holding something else" in res.stdout, \
        res.stdout
    res = restore_and_check(original, copy, procs, tmp_path, "--latest")
    assert "rebuilding it from the packs" in res.stderr, res.stderr
    assert verify(copy).returncode == 0


def test_a_deleted_index_is_rebuilt_with_one_line(original: Original, copy: Path, procs: Procs,
                                                  tmp_path: Path) -> None:
    shutil.rmtree(copy / "index")
    res = verify(copy, "--read-data")
    assert res.returncode == 0, res.stdout
    assert "rebuilt the index" in res.stderr, res.stderr
    shutil.rmtree(copy / "index")
    res = ok(incr(copy, "repair", "index"))
    assert "rebuilt the index" in res.stdout
    restore_and_check(original, copy, procs, tmp_path, "--latest")


def test_forget_keep_last_3_keeps_three_that_restore_and_prune_frees_the_rest(
        original: Original, copy: Path, procs: Procs, tmp_path: Path) -> None:
    before = sum(p.stat().st_size for _, p in iter_pack_files(copy / "packs"))
    dry = json.loads(ok(incr(copy, "forget", "--keep-last", "3", "--dry-run", "--prune", "--json")).stdout)
    assert [k["id"] for k in dry["kept"]] == original.ids[-3:]
    assert len(list((copy / "snapshots").iterdir())) == CHECKPOINTS            # a dry run changes nothing
    assert sum(p.stat().st_size for _, p in iter_pack_files(copy / "packs")) == before
    res = json.loads(ok(incr(copy, "forget", "--keep-last", "3", "--prune", "--json")).stdout)
    assert [r["id"] for r in res["removed"]] == original.ids[:-3]
    after = sum(p.stat().st_size for _, p in iter_pack_files(copy / "packs"))
    assert res["prune"]["bytes_freed"] == before - after > 0
    # Each checkpoint rewrote a good part of the job, so 7 of 10 forgotten free much of the store
    # (how much the job rewrote between two checkpoints depends on the machine's load: 0.3-0.5).
    assert after < before * 0.7, (before, after)
    print(f"forget --keep-last 3 --prune of {CHECKPOINTS}: {before} -> {after} bytes of packs "
          f"({res['prune']['bytes_freed']} freed, dry run said {dry['prune']['bytes_freed']})")
    listed = [c["id"] for c in json.loads(ok(incr(copy, "list", "--json")).stdout)]
    assert listed == original.ids[-3:]
    assert verify(copy, "--read-data").returncode == 0
    for checkpoint in original.ids[-3:]:
        restore_and_check(original, copy, procs, tmp_path, "--id", checkpoint)


def test_forget_never_removes_the_newest_checkpoint(original: Original, copy: Path) -> None:
    res = incr(copy, "forget", original.ids[-1][:8])
    assert res.returncode == 1 and "newest checkpoint" in res.stderr, res.stderr
    assert len(list((copy / "snapshots").iterdir())) == CHECKPOINTS
    res = json.loads(ok(incr(copy, "forget", "--keep-within", "1s", "--json")).stdout)
    assert original.ids[-1] in [k["id"] for k in res["kept"]]
    res = incr(copy, "forget")
    assert res.returncode == 2 and "--keep-last" in res.stderr, res.stderr


def test_prune_leaves_a_pack_whose_live_pages_are_damaged(original: Original, copy: Path) -> None:
    ok(incr(copy, "forget", "--keep-last", "1"))
    assert [c["id"] for c in json.loads(ok(incr(copy, "list", "--json")).stdout)] == original.ids[-1:]
    # Damage, in every older pack, a frame holding a page the newest checkpoint still uses.
    used = used_pages(copy, original.ids[-1])
    damaged = set()
    for name, path in iter_pack_files(copy / "packs"):
        if name in original.packs_of[original.ids[-1]]:
            continue
        live = used_frames(path, used)
        if live:
            flip_in_frame(path, live[0])
            damaged.add(name)
    assert damaged
    res = json.loads(ok(incr(copy, "prune", "--json")).stdout)
    left = {n for n, _ in iter_pack_files(copy / "packs")}
    rewritten_or_kept = damaged & left
    assert rewritten_or_kept == damaged, "a pack whose live pages are damaged was deleted"
    assert set(res["damaged_packs"]) <= damaged
    assert verify(copy, "--read-data").returncode == 1      # still damaged, still reported, nothing lost


def test_verify_read_data_subset_is_seeded(copy: Path) -> None:
    one = json.loads(verify(copy, "--read-data", "30%", "--seed", "7", "--json").stdout)
    two = json.loads(verify(copy, "--read-data", "0.3", "--seed", "7", "--json").stdout)
    assert one["packs_read"] == two["packs_read"] == max(1, round(one["packs"] * 0.3))
    assert one["bytes_read"] == two["bytes_read"] and one["seed"] == 7
    res = verify(copy, "--read-data", "3/2")
    assert res.returncode == 2 and "between 0 and 1" in res.stderr, res.stderr


def test_verify_of_one_checkpoint(original: Original, copy: Path) -> None:
    newest_pack(original, copy).unlink()
    assert verify(copy, "--id", original.ids[0][:8]).returncode == 0
    assert verify(copy, "--id", original.ids[-1][:8]).returncode == 1


def test_no_writer_while_the_store_is_pruned(copy: Path) -> None:
    assert os.path.exists(copy / "locks" / "write")
    res = ok(incr(copy, "prune", "--no-wait"))
    assert "freed" in res.stdout


# -- killed at any instant ---------------------------------------------------------------

GC_TRIALS = int(os.environ.get("INCR_GC_TRIALS", "30"))
GC_SEED = 20261202
GC_COMMANDS = {"forget-prune": ("forget", "--keep-last", "3", "--prune"), "prune": ("prune",)}


def gc_base(original: Original, tmp_path: Path, name: str) -> Path:
    """The store the command starts from: for prune, one whose old checkpoints are forgotten."""
    base = tmp_path / "base"
    shutil.copytree(original.store, base)
    if name == "prune":
        ok(incr(base, "forget", "--keep-last", "3"))
    return base




def check_after_kill(original: Original, store: Path, procs: Procs, tmp_path: Path, what: str,
                     before: list[str]) -> None:
    """The store verifies, every byte read; it shows the old snapshots or the new ones, nothing in
    between; and its newest checkpoint restores exactly."""
    problems = verify_here(store)
    assert not problems, f"{what}: {problems}"
    now = listed_here(store)
    assert now in (before, original.ids[-3:]), f"{what}: {len(now)} snapshots listed"
    restore_and_check(original, store, procs, tmp_path, "--id", now[-1])


@pytest.mark.parametrize("name", sorted(GC_COMMANDS))
def test_gc_killed_at_every_fault_point_leaves_a_store_that_verifies(original: Original, tmp_path: Path,
                                                                    procs: Procs, name: str) -> None:
    base = gc_base(original, tmp_path, name)
    before = listed_here(base)
    reached = 0
    for point in GC_POINTS:
        store = tmp_path / point
        shutil.copytree(base, store)
        res = incr(store, *GC_COMMANDS[name], env={"INCR_FAULT": point})
        assert res.returncode in (0, -signal.SIGKILL), (point, res.stderr)
        reached += res.returncode == -signal.SIGKILL
        check_after_kill(original, store, procs, tmp_path, f"{name} killed at {point}", before)
        ok(incr(store, *GC_COMMANDS[name]))                 # and the next run completes the work
        assert listed_here(store) == original.ids[-3:]
        assert verify(store, "--read-data").returncode == 0
        shutil.rmtree(store)
    assert reached >= (len(GC_POINTS) - 2 if name == "prune" else len(GC_POINTS)), reached


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(GC_COMMANDS))
def test_gc_killed_at_random_instants_leaves_a_store_that_verifies(original: Original, tmp_path: Path,
                                                                  procs: Procs, name: str) -> None:
    base = gc_base(original, tmp_path, name)
    before = listed_here(base)
    timing = tmp_path / "timing"
    shutil.copytree(base, timing)
    t0 = time.perf_counter()
    ok(incr(timing, *GC_COMMANDS[name]))
    span = time.perf_counter() - t0
    rng = random.Random(f"{GC_SEED}-{name}")
    killed = 0
    for trial in range(GC_TRIALS):
        store = tmp_path / f"trial-{trial}"
        shutil.copytree(base, store)
        delay = rng.uniform(0.0, span)
        what = f"trial {trial}: {name} killed after {delay * 1e3:.0f} ms"
        p = subprocess.Popen([sys.executable, "-m", "incr", "--store", str(store), *GC_COMMANDS[name]],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        if p.returncode != 0:
            assert p.returncode == -signal.SIGKILL, (what, p.returncode, err)
            killed += 1
        check_after_kill(original, store, procs, tmp_path, what, before)
        shutil.rmtree(store)
    assert killed >= GC_TRIALS // 2, f"only {killed} of {GC_TRIALS} commands were killed mid-run"
    print(f"{name}: {GC_TRIALS} trials, {killed} killed mid-run, 0 failures")
