"""What used to hang incr for ever, each now done in seconds: the kill of a multi-threaded
job, a stopped job with another SIGSTOP queued, zombies killed by a signal, and an
incremental checkpoint of a job with ~10 000 mappings.  Every incr command runs with a
timeout and every test with a pytest timeout, so that a regression fails, not hangs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import selfcheck
from engine_tree import descendants

from conftest import Procs, reap_orphans, wait_until

HANG = 120          # seconds for a whole test: each used to hang for ever


def tids_of(pids: list[int]) -> list[int]:
    return [int(t) for p in pids for t in os.listdir(f"/proc/{p}/task")]


def wait_all_gone(tids: list[int]) -> None:
    """Every TID free again: the killed processes come to us, the subreaper, to be reaped."""
    def gone() -> bool:
        reap_orphans()
        return not any(os.path.exists(f"/proc/{t}") for t in tids)

    wait_until(gone, "every TID of the job to be free", timeout=selfcheck.TIMEOUT)


def dump_threads_and_restore(exe: Path, tmp_path: Path, store: Path, procs: Procs, mode: str,
                             *args: object) -> selfcheck.Outcome:
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, *args)
    pids = descendants(pid)
    tids = tids_of(pids)
    selfcheck.dump(store, pid, mode)
    job.wait(timeout=selfcheck.TIMEOUT)
    wait_all_gone(tids)
    return selfcheck.restore_and_check(store, procs, out, go)


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_checkpoint_kill_of_a_multithreaded_process_ends_and_frees_every_tid(cprog, tmp_path: Path, store: Path,
                                                                            procs: Procs, mode: str) -> None:
    exe = cprog("threadgroup", "-pthread")
    outcome = dump_threads_and_restore(exe, tmp_path, store, procs, mode, 6, 0)
    selfcheck.assert_passed(outcome)
    assert sum(line.startswith("ok worker") for line in outcome.lines) == 6


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_checkpoint_kill_of_a_tree_with_threads_in_every_process(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                 mode: str) -> None:
    exe = cprog("threadgroup", "-pthread")
    outcome = dump_threads_and_restore(exe, tmp_path, store, procs, mode, 3, 2)
    selfcheck.assert_passed(outcome)
    assert sum(line.startswith("ok child") for line in outcome.lines) == 2
