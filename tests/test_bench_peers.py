"""The peers of `incr bench --compare` (incr/bench/peers.py): each checkpoints a running xorjob, which keeps
running; the job is killed and restored through the peer, and the restored job's memory is exactly what an
uninterrupted run holds at its iteration, from where the checkpoint left it.  A peer not built on this
machine (benchmarks/peers/build.sh) is skipped with the reason its absent() gives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import xorjob

from conftest import Procs, kill_and_wait_gone, wait_until
from incr.bench.peers import Criu, Dmtcp, Peer, PeerFailed, find_binary, peers

PAGES = 4096  # 16 MiB mapped; the job dirties some 8 pages a millisecond in it
PEER_NAMES = ["criu", "dmtcp", "dmtcp-gzip"]


@pytest.fixture(params=PEER_NAMES)
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    made = {p.name: p for p in peers(["criu", "dmtcp"])}
    chosen = made[request.param]
    why = chosen.absent()
    if why is not None:
        pytest.skip(why)
    try:
        yield chosen
    finally:
        chosen.close()


def start_job(peer: Peer, exe: Path, tmp_path: Path, procs: Procs, images: Path) -> xorjob.Job:
    report, ready = tmp_path / "report", tmp_path / "ready"
    job = procs.start([*peer.launch_prefix(images), exe, report, ready, PAGES])
    wait_until(ready.exists, "the job to be ready")
    return xorjob.Job(exe, report, job.pid, PAGES)


def test_checkpoint_kill_restore_is_exact(peer: Peer, cprog: Callable[..., Path], procs: Procs,
                                          tmp_path: Path) -> None:
    exe = cprog("xorjob")
    images = tmp_path / "images"
    job = start_job(peer, exe, tmp_path, procs, images)
    before = xorjob.assert_memory_exact(job, "before the checkpoint")

    first = peer.checkpoint(job.pid, images)
    running_on = xorjob.assert_memory_exact(job, "the job left running by the checkpoint")
    assert running_on > before, "the checkpointed job does not run on"
    second = peer.checkpoint(job.pid, tmp_path / "images-2")  # a dir of its own: restored from, not the first
    for taken in (first, second):
        assert taken.wall_s > 0 and taken.bytes > 0, taken
        assert taken.frozen_ms is not None and taken.frozen_ms > 0, taken

    kill_and_wait_gone(job.pid)
    restored = peer.restore(tmp_path / "images-2")
    procs.track(restored.pid)
    assert restored.wall_s > 0 and restored.pid > 0
    again = xorjob.Job(exe, job.report, restored.pid, PAGES)
    resumed_at = xorjob.assert_memory_exact(again, f"the job restored by {peer.name}")
    assert resumed_at >= running_on, f"restored at iteration {resumed_at}: before the second checkpoint"
    assert xorjob.assert_memory_exact(again, "the restored job") > resumed_at, "the restored job does not run"


def test_a_job_not_of_the_peer_is_refused_in_one_line(cprog: Callable[..., Path], procs: Procs, tmp_path: Path) -> None:
    dmtcp = Dmtcp(gzip=False)
    why = dmtcp.absent()
    if why is not None:
        pytest.skip(why)
    try:
        outsider = procs.start([cprog("xorjob"), tmp_path / "r", tmp_path / "ready", 16])
        dmtcp.launch_prefix(tmp_path / "images")  # a computation of ours, which the outsider is not in
        with pytest.raises(PeerFailed, match=f"PID {outsider.pid} is in no DMTCP computation of ours"):
            dmtcp.checkpoint(outsider.pid, tmp_path / "images")
    finally:
        dmtcp.close()


def test_absent_peers_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("INCR_PEERS_DIR", str(tmp_path / "peers"))
    assert find_binary("criu") is None
    assert f"criu: not found on PATH nor in {tmp_path / 'peers'}/*/bin" in (Criu().absent() or "")
    assert "dmtcp: dmtcp_launch not found on PATH" in (Dmtcp(gzip=False).absent() or "")
    with pytest.raises(PeerFailed, match="not found"):
        Criu().checkpoint(1, tmp_path / "images")


def test_binaries_come_from_the_cache_dir_when_not_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("INCR_PEERS_DIR", str(tmp_path / "peers"))
    for version in ("dmtcp-3.9.0", "dmtcp-4.2.0"):
        (tmp_path / "peers" / version / "bin").mkdir(parents=True)
        launch = tmp_path / "peers" / version / "bin" / "dmtcp_launch"
        launch.write_text("#!/bin/sh\n")
        launch.chmod(0o755)
    assert find_binary("dmtcp_launch") == tmp_path / "peers" / "dmtcp-4.2.0" / "bin" / "dmtcp_launch"


def test_peer_names() -> None:
    assert [p.name for p in peers(["criu", "dmtcp"])] == PEER_NAMES
    with pytest.raises(ValueError, match="unknown peer 'gdb': the peers are criu and dmtcp"):
        peers(["gdb"])

