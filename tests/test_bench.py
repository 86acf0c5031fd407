"""`incr bench` in its smallest configurations, to keep it from rotting: the JSON's structure and
sanity (positive figures, a sparse job's incremental checkpoints smaller than its full one), the
report's files, the side-by-side run when CRIU and DMTCP are built here.  Never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from incr.bench import harness, peers, report

pytestmark = pytest.mark.timeout(600)

SMALL = ["--quick", "--size", "16M", "--checkpoints", "3", "--repeat", "1", "--interval", "0.2"]
PNG = b"\x89PNG\r\n\x1a\n"


def bench(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "incr", "bench", *map(str, args), "--work-dir", str(tmp_path / "work")]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=500)


def positive(w: dict[str, Any], *path: str) -> float:
    value: Any = w
    for key in path:
        value = value[key]
    assert isinstance(value, (int, float)) and value > 0, (path, value)
    return float(value)


def test_the_smallest_run_writes_sane_json_and_a_report(tmp_path: Path) -> None:
    out, report = tmp_path / "out.json", tmp_path / "report"
    res = bench(tmp_path, "--workloads", "sparse,noisy", *SMALL, "--json", out, "--report", report)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["commit"]
    assert set(data["workloads"]) == {"sparse", "noisy"}
    for name, w in data["workloads"].items():
        for mode in ("incremental", "full", "probe", "no_precopy"):
            positive(w, "downtime_ms_p50", mode)
        for key in ("ingest_mb_s", "zstd_mb_s", "digest_mb_s", "restore_s", "copy_limit_s", "tracking_slowdown",
                    "incr_peak_rss_mb", "resident_mb"):
            positive(w, key)
        full = positive(w, "bytes_per_checkpoint", "full")
        incremental = positive(w, "bytes_per_checkpoint", "incremental")
        if name == "sparse":
            assert incremental < full, (incremental, full)
        assert w["incr_peak_anon_mb"] <= w["incr_peak_rss_mb"] * 1.05 + 1
        assert w["checkpoints_restored"] == {"early": 2, "late": 3}
        assert w["probe_quiet_ms"] >= 0
        (run,) = w["series"]
        modes = [c["mode"] for c in run["checkpoints"]]
        assert modes == ["first", "incremental", "incremental", "no-precopy", "full"], modes
    assert "sparse" in res.stdout and "noisy" in res.stdout
    text = (report / "report.md").read_text()
    assert "| sparse |" in text and "| noisy |" in text
    pngs = sorted(report.glob("*.png"))
    assert [p.name for p in pngs] == ["bytes.png", "downtime.png", "ratios.png", "restore.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000, p
        assert f"]({p.name})" in text
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").glob("*-incr-*")), \
        "each trial's job and stores are removed after it"


@pytest.mark.parametrize(("args", "words"), [
    (["--workloads", "banana"], "unknown workload banana"),
    (["--compare", "gdb"], "gdb"),
    (["--checkpoints", "1"], "at least 2"),
    (["--size", "lots"], "--size"),
    (["--json", "/nonexistent/dir/out.json"], "does not exist"),
    (["--interval", "-1"], "--interval: must not be negative"),
    (["--interval", "nan"], "--interval: must be a finite number"),
    (["--repeat", "0"], "--repeat: must be at least 1"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    res = bench(tmp_path, *args)
    assert res.returncode == 2, res.stderr
    assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_side_by_side_with_criu_and_dmtcp(tmp_path: Path) -> None:
    chosen = peers.peers(["criu", "dmtcp"])
    absent = [f"{p.name}: {p.absent()}" for p in chosen if p.absent() is not None]
    if absent:
        pytest.skip("peers absent (`make peers` builds them): " + "; ".join(absent))
    out = tmp_path / "out.json"
    res = bench(tmp_path, "--workloads", "sparse", *SMALL, "--compare", "criu,dmtcp", "--json", out)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert {p["name"] for p in data["peers"]["present"]} == {p.name for p in chosen}
    w = data["workloads"]["sparse"]
    for p in chosen:
        pw = w["peers"][p.name]
        for key in ("probe_ms_p50", "bytes_per_checkpoint", "checkpoint_wall_s", "restore_s"):
            positive(pw, key)
        for key in ("probe_ms_p50", "bytes_per_checkpoint", "restore_s"):
            positive(pw, "incr_over_peer", key)


def test_a_failed_run_is_reported_and_left_out_of_the_medians(tmp_path: Path) -> None:
    """One engine failing one workload is a result, not the end of the run: its reason is kept,
    its figures are not in the medians."""
    def trial(engine: str, rep: int, restore_s: float, failed: str = "") -> harness.Trial:
        c = harness.Checkpoint("incremental" if engine == "incr" else "dump", 0.0, 5.0, 6.0, 0.5, 4096)
        return harness.Trial("sparse", 16, engine, rep, [c], {"restore_s": restore_s}, failed=failed)

    settings = harness.Settings(workloads=("sparse",), sizes_mib=(16,), repeat=2, checkpoints=2, no_precopy=0,
                                interval_s=0, seed=1, work_dir=tmp_path, peers=tuple(peers.peers(["criu"])))
    trials = [trial("incr", 0, 1.0), trial("criu", 0, 9.0, failed="criu: restore failed: bad size"),
              trial("incr", 1, 3.0), trial("criu", 1, 2.0)]
    w = harness.summarize(trials, settings)["sparse"]
    assert w["failed"] == [] and w["restore_s"] == 2.0
    criu = w["peers"]["criu"]
    assert criu["failed"] == ["criu: restore failed: bad size"]
    assert criu["restore_s"] == 2.0 and criu["incr_over_peer"]["restore_s"] == 1.5     # run 1 alone: 3.0 / 2.0


def test_a_peer_that_failed_every_run_gets_no_bar(tmp_path: Path) -> None:
    """A peer with no figure is drawn as no bar (and a word), never as a bar at the floor."""
    c = harness.Checkpoint("incremental", 0.0, 5.0, 6.0, 0.5, 4096)
    full = harness.Checkpoint("full", 0.0, 5.0, 6.0, 0.5, 8192)
    d = harness.Checkpoint("dump", 0.0, 5.0, 6.0, 0.5, 2**20)
    settings = harness.Settings(workloads=("sparse", "shm"), sizes_mib=(16,), repeat=1, checkpoints=1,
                                no_precopy=0, interval_s=0, seed=1, work_dir=tmp_path,
                                peers=tuple(peers.peers(["criu"])))
    trials = [harness.Trial(name, 16, engine, 0, [c, full] if engine == "incr" else [d], {"restore_s": 1.0},
                            failed="criu: restore failed" if (name, engine) == ("shm", "criu") else "")
              for name in ("sparse", "shm") for engine in ("incr", "criu")]
    bars = report.bytes_bars({"workloads": harness.summarize(trials, settings)})
    assert bars["criu"] == [1.0, None]
    assert bars["incr incremental"] == [4096 / 2**20] * 2 and bars["incr full"] == [8192 / 2**20] * 2
