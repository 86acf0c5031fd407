"""What used to hang incr for ever, each now done in seconds: the kill of a multi-threaded
job, a stopped job with another SIGSTOP queued, zombies killed by a signal, and an
incremental checkpoint of a job with ~10 000 mappings.  Every incr command runs with a
timeout and every test with a pytest timeout, so that a regression fails, not hangs."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from pathlib import Path

import pytest
import selfcheck
from engine_tree import descendants

from conftest import Procs, incr, ok, reap_orphans, wait_exit, wait_until
from incr.engine import freeze

HANG = 120          # seconds for a whole test: each used to hang for ever


def tids_of(pids: list[int]) -> list[int]:
    return [int(t) for p in pids for t in os.listdir(f"/proc/{p}/task")]


def wait_all_gone(tids: list[int]) -> None:
    """Every TID free again: the killed processes come to us, the subreaper, to be reaped."""
    def gone() -> bool:
        reap_orphans()
        return not any(os.path.exists(f"/proc/{t}") for t in tids)

    wait_until(gone, "every TID of the job to be free", timeout=selfcheck.TIMEOUT)


def run_tree(exe: Path, tmp_path: Path, store: Path, procs: Procs, mode: str,
             *args: object) -> selfcheck.Outcome:
    """selfcheck.run() for a tree: every TID of it free (its zombies too) before the restore."""
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
    outcome = run_tree(exe, tmp_path, store, procs, mode, 6, 0)
    selfcheck.assert_passed(outcome)
    assert sum(line.startswith("ok worker") for line in outcome.lines) == 6


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_checkpoint_kill_of_a_tree_with_threads_in_every_process(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                 mode: str) -> None:
    exe = cprog("threadgroup", "-pthread")
    outcome = run_tree(exe, tmp_path, store, procs, mode, 3, 2)
    selfcheck.assert_passed(outcome)
    assert sum(line.startswith("ok child") for line in outcome.lines) == 2


def job_control(pid: int) -> tuple[list[tuple[str, str]], str]:
    """(each thread's state letter and its own pending set, the process-wide pending set)."""
    def fields(path: str) -> dict[str, str]:
        return dict(line.split(":\t", 1) for line in Path(path).read_text().splitlines() if ":\t" in line)

    threads = [fields(f"/proc/{pid}/task/{t}/status") for t in sorted(os.listdir(f"/proc/{pid}/task"), key=int)]
    return [(t["State"][0], t["SigPnd"]) for t in threads], fields(f"/proc/{pid}/status")["ShdPnd"]


def stop(pid: int, *, queued: bool) -> tuple[list[tuple[str, str]], str]:
    """kill -STOP, wait until every thread is stopped, and with `queued` send another SIGSTOP, which
    stays pending; the job-control state as it is then."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: all(state == "T" for state, _ in job_control(pid)[0]), "every thread to stop")
    if queued:
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: int(job_control(pid)[1], 16) & 1 << (signal.SIGSTOP - 1) != 0, "a SIGSTOP pending")
    return job_control(pid)


def settles(pid: int, expected: tuple[list[tuple[str, str]], str], what: str) -> None:
    """The job-control state becomes `expected` (a thread just let go runs a moment before it
    re-enters its group-stop), or the test fails saying what it was last.  (The last look is the
    one judged: a sleeping job that polls a file is running now and then.)"""
    seen = [job_control(pid)]

    def reached() -> bool:
        seen[0] = job_control(pid)
        return seen[0] == expected

    with contextlib.suppress(pytest.fail.Exception):
        wait_until(reached, what, timeout=10)
    assert seen[0] == expected, what


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("queued", [False, True], ids=["stopped", "another-SIGSTOP-queued"])
@pytest.mark.parametrize("threads", [1, 4])
def test_stopped_process_is_frozen_and_restored_stopped_as_it_was(cprog, tmp_path: Path, store: Path, procs: Procs,
                                                                   mode: str, queued: bool, threads: int) -> None:
    exe = cprog("threadgroup", "-pthread")
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, threads - 1, 0,
                                        env={**os.environ, "SC_SIGCONTS": "1"})
    before = stop(pid, queued=queued)
    if mode == "incremental":
        for command in ("predump", "checkpoint"):
            ok(incr(store, command, pid, timeout=selfcheck.TIMEOUT))
            settles(pid, before, f"after {command}: stopped as before, nothing else pending")
    ok(incr(store, "checkpoint", pid, "--kill", timeout=selfcheck.TIMEOUT))
    job.wait(timeout=selfcheck.TIMEOUT)

    def still_stopped(restored: int) -> None:
        settles(restored, before, "restored stopped, the same signals pending")
        os.kill(restored, signal.SIGCONT)

    selfcheck.assert_passed(selfcheck.restore_and_check(store, procs, out, go, before_go=still_stopped))


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("threads", [1, 4])
def test_stopped_process_continues_normally_after_predump_and_checkpoint(cprog, tmp_path: Path, store: Path,
                                                                         procs: Procs, threads: int) -> None:
    exe = cprog("threadgroup", "-pthread")
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, threads - 1, 0,
                                        env={**os.environ, "SC_SIGCONTS": "1"})
    before = stop(pid, queued=True)
    for command in ("predump", "checkpoint", "predump"):
        ok(incr(store, command, pid, timeout=selfcheck.TIMEOUT))
        settles(pid, before, f"after {command}: stopped as before, nothing else pending")
    os.kill(pid, signal.SIGCONT)
    go.touch()
    assert job.wait(timeout=selfcheck.TIMEOUT) == 0, out.read_text()
    lines = out.read_text().splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), lines


def plain_core_pattern() -> bool:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    return bool(pattern) and not pattern.startswith("|") and "/" not in pattern


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("core", [False, True], ids=["no-core", "core"])
def test_zombies_come_back_with_the_wait_status_they_had(cprog, tmp_path: Path, store: Path, procs: Procs, mode: str,
                                                         core: bool) -> None:
    if core and not plain_core_pattern():
        pytest.skip("core_pattern is not a plain file name: neither the job nor incr can dump a core in a "
                    "directory of its own")
    exe = cprog("zombies")
    cores = tmp_path / "cores"
    cores.mkdir()
    before = set(Path(tempfile.gettempdir()).glob("incr-core-*"))
    outcome = run_tree(exe, tmp_path, store, procs, mode, *([cores] if core else []))
    selfcheck.assert_passed(outcome)
    assert sum(line.startswith("ok zombie") for line in outcome.lines) == 8
    assert len(list(cores.iterdir())) == (1 if core else 0), "the job's own core only: incr's went with its directory"
    assert set(Path(tempfile.gettempdir()).glob("incr-core-*")) == before


MAPPINGS = 10_000


def dirty_step(go: Path, k: int) -> None:
    """Have the job rewrite some of its pages (generation k) and wait until it has."""
    Path(f"{go}.dirty{k}").touch()
    wait_until(lambda: Path(f"{go}.dirtied{k}").exists(), f"the job to write generation {k}")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", selfcheck.MODES)
def test_ten_thousand_mappings_checkpointed_incrementally_and_restored(cprog, tmp_path: Path, store: Path,
                                                                       procs: Procs, mode: str) -> None:
    exe = cprog("manymaps")
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, MAPPINGS)
    if mode == "incremental":
        ok(incr(store, "predump", pid, timeout=selfcheck.TIMEOUT))
        dirty_step(go, 1)
        ok(incr(store, "checkpoint", pid, timeout=selfcheck.TIMEOUT))
        dirty_step(go, 2)
    ok(incr(store, "checkpoint", pid, "--kill", timeout=selfcheck.TIMEOUT))
    job.wait(timeout=selfcheck.TIMEOUT)
    outcome = selfcheck.restore_and_check(store, procs, out, go)
    selfcheck.assert_passed(outcome)
    assert len(outcome.lines) == 3


@pytest.mark.timeout(HANG)
@pytest.mark.parametrize("sigcont", [False, True], ids=["left-stopped", "sigcont-meanwhile"])
def test_a_sigstop_an_injection_dequeued_goes_back_unless_a_sigcont_came(cprog, tmp_path: Path, procs: Procs,
                                                                        sigcont: bool) -> None:
    exe = cprog("threadgroup", "-pthread")
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, 0, 0, env={**os.environ, "SC_SIGCONTS": "1"})
    before = stop(pid, queued=True)
    with freeze.freeze(pid) as frozen:
        frozen.tracee().call("getpid")                 # dequeues the pending SIGSTOP
        assert job_control(pid)[1] == "0000000000000000"
        if sigcont:
            os.kill(pid, signal.SIGCONT)
    if sigcont:
        # Running again with nothing pending (the SIGCONT queued while traced is taken at once):
        # the SIGCONT discarded the SIGSTOP, as without incr.
        settles(pid, ([("S", "0000000000000000")], "0000000000000000"), "the job to continue, nothing pending")
    else:
        settles(pid, before, "stopped again, the SIGSTOP pending again")
        os.kill(pid, signal.SIGCONT)
    go.touch()
    assert job.wait(timeout=selfcheck.TIMEOUT) == 0, out.read_text()


@pytest.mark.timeout(HANG)
def test_stopped_process_restored_in_a_new_pid_namespace_is_stopped_as_it_was(cprog, tmp_path: Path, store: Path,
                                                                                procs: Procs) -> None:
    exe = cprog("threadgroup", "-pthread")
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, 2, 0, env={**os.environ, "SC_SIGCONTS": "1"})
    before = stop(pid, queued=True)
    ok(incr(store, "checkpoint", pid, "--kill", timeout=selfcheck.TIMEOUT))
    job.wait(timeout=selfcheck.TIMEOUT)

    res = ok(incr(store, "restore", "--detach", "--new-pidns", timeout=selfcheck.TIMEOUT))
    root = procs.track(int(res.stdout))
    init = procs.track(int(Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()[1]))
    settles(root, before, "restored stopped, the same signals pending")
    os.kill(root, signal.SIGCONT)
    go.touch()
    status = wait_exit(init, timeout=selfcheck.TIMEOUT)       # the namespace's init ends with its root's status
    lines = out.read_text().splitlines()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, lines
    assert lines and all(line.startswith("ok ") for line in lines), lines


@pytest.mark.timeout(HANG)
def test_a_stopped_job_let_go_and_frozen_again_at_once_is_seen_stopped(cprog, tmp_path: Path, procs: Procs) -> None:
    """A thread let go runs a moment before it re-enters its group-stop: /proc says "R" then, and a
    checkpoint right after a pre-copy round took the job for a running one (restored running)."""
    exe = cprog("threadgroup", "-pthread")
    pid, job, out, go = selfcheck.start(exe, tmp_path, procs, 3, 0, env={**os.environ, "SC_SIGCONTS": "1"})
    before = stop(pid, queued=True)
    for _ in range(200):
        with freeze.freeze(pid) as frozen:
            assert frozen.was_stopped
            frozen.tracee().call("getpid")
    settles(pid, before, "stopped as before, the SIGSTOP pending")
    os.kill(pid, signal.SIGCONT)
    go.touch()
    assert job.wait(timeout=selfcheck.TIMEOUT) == 0, out.read_text()
