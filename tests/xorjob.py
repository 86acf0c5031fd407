"""The deterministic memory-churn job of the soaks (tests/programs/xorjob.c): its memory after
iteration i is a function of i, so a restore that brought back a wrong page shows in every
later digest.  Helpers to run it, ask it where it is, and compute what it should hold."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import wait_until


@dataclass
class Job:
    exe: Path
    report: Path
    pid: int
    pages: int


def reported(job: Job) -> tuple[int, str]:
    """Iteration and digest of the running job, as it reports them on SIGUSR1."""
    job.report.unlink(missing_ok=True)
    os.kill(job.pid, signal.SIGUSR1)
    wait_until(job.report.exists, "the job's report")
    iteration, digest = job.report.read_text().split()
    return int(iteration), digest


def reference(job: Job, iteration: int) -> str:
    """The digest an uninterrupted run has after `iteration` iterations."""
    res = subprocess.run([job.exe, "--reference", str(iteration), str(job.pages)], capture_output=True, text=True,
                         check=True)
    return res.stdout.split()[1]


def assert_memory_exact(job: Job, what: str) -> int:
    """The running job's memory is what an uninterrupted run has at its iteration; that iteration."""
    iteration, digest = reported(job)
    assert digest == reference(job, iteration), f"{what}: wrong memory (at iteration {iteration})"
    return iteration
