"""examples/slurm/job.sbatch on a real single-node Slurm: the job is checkpointed by `incr run`,
warned with USR1 as Slurm does before a time limit, requeued, restored from its newest checkpoint
by the requeued batch script, and ends with the output of a run that was never interrupted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster

from conftest import Procs, incr, line_count, ok

__all__ = ["slurm_cluster"]        # the fixture, imported for pytest to find

EXAMPLES = Path(__file__).parent.parent / "examples"
# 20-60 s of work here (1 ms an iteration alone, 3-6 ms supervised on a busy machine): long enough for
# two checkpoints and the requeue to land well before its end, short enough for a test of ~2 minutes.
ITERATIONS = 20000
TIMEOUT = 240       # seconds for any one stage


def checkpoints(store: Path) -> list[dict[str, object]]:
    if not store.exists():
        return []
    listed = incr(store, "list", "--json", timeout=60)
    return json.loads(listed.stdout) if listed.returncode == 0 else []


def job_env() -> dict[str, str]:
    """What sbatch exports to the job: this incr first on PATH, checkpoints every 2 s."""
    bindir = str(Path(sys.executable).parent)
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "INCR_EVERY": "2s", "INCR_KEEP_LAST": "3"}


@pytest.mark.slow
def test_requeued_job_restores_and_finishes_identically(slurm_cluster: SlurmCluster, tmp_path: Path,
                                                        procs: Procs) -> None:
    cluster = slurm_cluster
    subprocess.run(["gcc", "-O2", "-o", str(tmp_path / "solver"), str(EXAMPLES / "solver.c"), "-lm"], check=True)
    reference = procs.start([tmp_path / "solver", tmp_path / "reference.txt", str(ITERATIONS)])

    job = cluster.sbatch(EXAMPLES / "slurm" / "job.sbatch", "./solver", "out.txt", str(ITERATIONS),
                         cwd=tmp_path, env=job_env())
    store = tmp_path / f"incr-store.{job}"
    log = tmp_path / f"slurm-{job}.out"
    out = tmp_path / "out.txt"

    def slurm_log() -> str:
        return log.read_text(errors="replace") if log.exists() else "(no log)"

    def while_running(predicate: Callable[[], bool]) -> Callable[[], bool]:
        """`predicate`, failing at once if the job has ended instead."""
        def check() -> bool:
            if predicate():
                return True
            state = cluster.job(job).get("JobState")
            if state not in ("PENDING", "CONFIGURING", "RUNNING"):
                pytest.fail(f"job {job} is {state}, not running\n{slurm_log()}")
            return False
        return check

    # 1. First start: incr run checkpoints the solver every 2 s, one line in the log each.
    cluster.wait_job_state(job, {"RUNNING"}, TIMEOUT, log)
    first = re.compile(r"checkpoint (\w+) of PID (\d+) \(scheduled\)")
    cluster.wait_for(while_running(lambda: first.search(slurm_log()) is not None), "a first checkpoint", TIMEOUT, log)
    solver_pid = int(first.search(slurm_log()).group(2))  # type: ignore[union-attr]

    # 2. Slurm's warning: a last checkpoint at once; the job runs on.
    cluster.client("scancel", "--batch", "--signal=USR1", str(job))
    final = re.compile(rf"checkpoint (\w+) of PID {solver_pid} \(final, SIGUSR1\)")
    cluster.wait_for(while_running(lambda: final.search(slurm_log()) is not None), "the final checkpoint on USR1",
                     TIMEOUT, log)
    final_id = final.search(slurm_log()).group(1)  # type: ignore[union-attr]
    assert any(str(c["id"]).startswith(final_id) for c in checkpoints(store)), slurm_log()
    lines = line_count(out)
    cluster.wait_for(while_running(lambda: line_count(out) > lines), "the solver to run on after USR1", TIMEOUT, log)
    assert cluster.job(job).get("JobState") == "RUNNING", slurm_log()

    # 3. Requeue: Slurm kills the job and starts the script again with SLURM_RESTART_COUNT=1.
    assert "done" not in out.read_text(), f"the solver finished before the requeue: raise ITERATIONS\n{slurm_log()}"
    cluster.client("scontrol", "requeue", str(job))
    cluster.wait_for(lambda: cluster.job(job).get("Restarts") == "1", "the job to be requeued", TIMEOUT, log)
    info = cluster.wait_job_state(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"}, TIMEOUT, log)
    text = slurm_log()
    print(f"--- {log.name}\n{text}")
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", f"{info}\n{text}"

    # 4. The requeued start restored the checkpointed solver (same PID) rather than starting it again.
    assert "restart 1: restoring the newest checkpoint" in text, text
    assert f"incr: restored PID {solver_pid} from" in text, text
    assert reference.wait(timeout=TIMEOUT) == 0
    assert out.read_bytes() == (tmp_path / "reference.txt").read_bytes(), text
    assert ok(incr(store, "verify")).returncode == 0


def test_cluster_fixture_runs_a_job_and_leaves_nothing(tmp_path: Path) -> None:
    """The fixture's own contract: a job runs as root, and stopping leaves no daemon and no state."""
    from slurm_cluster import SlurmCluster as Cluster
    from slurm_cluster import ensure_installed, processes_with_env

    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm with jobs run as root needs root")
    ensure_installed()
    base = Path(tempfile.mkdtemp(prefix="incr-slurm-"))
    cluster = Cluster(base)
    try:
        cluster.start()
        script = tmp_path / "hello.sh"
        script.write_text("#!/bin/sh\necho hello from $SLURM_JOB_ID as $(id -u)\n")
        job = cluster.sbatch(script, cwd=tmp_path)
        cluster.wait_job_state(job, {"COMPLETED"}, TIMEOUT)
        assert (tmp_path / f"slurm-{job}.out").read_text() == f"hello from {job} as 0\n"
        pids = [d.pid for d in cluster.daemons.values()] + [cluster.munged_pid]
    finally:
        cluster.stop()
    assert not base.exists()
    assert not processes_with_env("SLURM_CONF", str(cluster.conf))
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"PID {pid} of the cluster outlived it"

