"""The Python API, and resources the acceptance job does not exercise:
interval timers, credentials of a non-root job, `incr inspect`."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import incr
from conftest import Procs, kill_and_wait_gone, line_count, ok, read_pid, wait_until
from conftest import incr as incr_cli

TIMER_JOB = r"""
import signal, sys
out = open(sys.argv[1], "w")
ticks = 0
def tick(signo, frame):
    global ticks
    ticks += 1
    out.write(f"tick {ticks}\n")
    out.flush()
signal.signal(signal.SIGALRM, tick)
signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
while ticks < 60:
    signal.pause()
out.write("done\n")
"""


def test_api_checkpoint_restore_and_itimer_keeps_firing(tmp_path: Path, procs: Procs) -> None:
    out = tmp_path / "ticks.txt"
    job = procs.start([sys.executable, "-c", TIMER_JOB, out])
    wait_until(lambda: line_count(out) >= 10, "the timer to tick")
    store = incr.Store(tmp_path / "store")
    info = incr.checkpoint(job.pid, store, kill=True)
    job.wait()
    assert info.root_pid == job.pid and info.stats.pages_total > 0
    assert [c.id for c in store.checkpoints()] == [info.id]

    restored = incr.restore(store)
    procs.track(restored.pid)
    assert restored.pid == job.pid and restored.checkpoint_id == info.id
    assert restored.wait() == 0                 # only a live interval timer gets it to 60 ticks
    lines = out.read_text().splitlines()
    assert lines[-1] == "done" and lines[-2] == "tick 60"


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory another user can use (pytest's own tmp tree is root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="incr-test-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_non_root_job_keeps_its_credentials_and_task_attributes(cprog, world_dir: Path, procs: Procs) -> None:
    nobody = pwd.getpwnam("nobody")
    tmp_path = world_dir
    ready = tmp_path / "ready"
    exe = tmp_path / "idle"
    exe.write_bytes(cprog("idle").read_bytes())
    exe.chmod(0o755)
    job = procs.start([exe, 1, "random", ready], user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    read_pid(ready)
    os.setpriority(os.PRIO_PROCESS, job.pid, 7)
    os.sched_setaffinity(job.pid, {0})
    Path(f"/proc/{job.pid}/oom_score_adj").write_text("123")
    before = Path(f"/proc/{job.pid}/status").read_text()
    store = tmp_path / "store"
    ok(incr_cli(store, "checkpoint", job.pid))
    kill_and_wait_gone(job.pid)
    job.wait()
    pid = procs.track(int(ok(incr_cli(store, "restore", "--detach")).stdout))
    after = Path(f"/proc/{pid}/status").read_text()
    for field in ("Uid:", "Gid:", "Groups:", "CapEff:"):
        want = next(line for line in before.splitlines() if line.startswith(field))
        assert want in after.splitlines(), field
    assert f"\t{nobody.pw_uid}\t" in next(line for line in after.splitlines() if line.startswith("Uid:"))
    assert os.getpriority(os.PRIO_PROCESS, pid) == 7
    assert os.sched_getaffinity(pid) == {0}
    assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "123"


def test_inspect_shows_process_memory_and_files(cprog, tmp_path: Path, procs: Procs) -> None:
    ready = tmp_path / "ready"
    with open(tmp_path / "log", "w") as log:
        job = procs.start([cprog("idle"), 2, "random", ready], stdout=log)
    read_pid(ready)
    store = tmp_path / "store"
    info = json.loads(ok(incr_cli(store, "checkpoint", job.pid, "--json")).stdout)
    shown = json.loads(ok(incr_cli(store, "inspect", info["id"][:8], "--json")).stdout)
    proc = shown["processes"][0]
    assert proc["pid"] == job.pid and proc["comm"] == "idle"
    assert proc["threads"][0]["in_syscall"] == "pause"
    fds = {d["fd"]: d for d in proc["fds"]}
    assert fds[0]["kind"] == "char_device" and fds[0]["path"] == "/dev/null"
    assert fds[1]["kind"] == "regular" and fds[1]["path"] == str(tmp_path / "log")
    big = [v for v in proc["vmas"] if v["pages_stored"] >= 512]
    assert big and big[0]["prot"] == "rw-" and big[0]["kind"] == "anon"
    assert sum(v["pages_stored"] for v in proc["vmas"]) == info["pages_total"]
    text = ok(incr_cli(store, "inspect", info["id"])).stdout
    assert f"process {job.pid} (idle)" in text and "in pause()" in text and str(tmp_path / "log") in text
    os.kill(job.pid, 9)
    job.wait()
