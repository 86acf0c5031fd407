"""The conformance corpus: small self-checking programs (tests/programs/conformance/*.c), each
setting up one kernel resource or behaviour, run through a checkpoint and a restore in both
selfcheck.MODES, checking themselves after restore (issue 8: no silent wrong restore).

A program incr must refuse is checkpointed the same way: the command that refuses must exit 1
with exactly one line on stderr naming the PID holding the resource and the resource; the job
then runs on, unharmed, and checks itself all the same.

Every program is run as  PROG OUT READY GO WORK  (tests/programs/conformance/cf.h).  A
program whose resource a child holds writes that child's PID to WORK/culprit.  Every incr call
has a timeout and every test a pytest timeout: a hang is a failure, never a stuck suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import selfcheck
from engine_tree import descendants

from conftest import Procs, incr, read_pid, reap_orphans, wait_exit, wait_until

CORPUS = Path(__file__).parent / "programs" / "conformance"
HANG = 30                   # seconds an incr command of this corpus may take before it counts as hung
TEST_TIMEOUT = 180


@dataclass(frozen=True)
class Spec:
    """How to build a program and what incr must do with it.

    `refuse`: words the one-line refusal must hold (besides "PID <culprit>"); empty: the program
    must come back and pass its own checks.  `area`: the part of incr another helper is changing
    (the program is expected to fail until that branch merges); shown in the test id.  `source`:
    the program's file when not its name (built with other `flags`)."""

    flags: tuple[str, ...] = ()
    refuse: tuple[str, ...] = ()
    area: str = ""
    source: str = ""


PT = ("-pthread",)
RT = ("-lrt",)
LM = ("-lm",)
PROGRAMS: dict[str, Spec] = {
    "cpu_busyloop": Spec(),
    "cpu_gpregs": Spec(),
    "cpu_gsbase": Spec(),
    "cpu_mxcsr": Spec(),
    "cpu_x87": Spec(LM),
    "cpu_ymm": Spec(),
    "cpu_zmm": Spec(("-mavx512f",)),
    "fd_append_offsets": Spec(),
    "fd_cloexec_exec": Spec(),
    "fd_devices": Spec(),
    "fd_dir": Spec(),
    "fd_dup_shared": Spec(),
    "fd_epoll": Spec(),
    "fd_epoll_closed": Spec(),
    "fd_ghost_dirs": Spec(),
    "fd_ghost_files": Spec(),
    "fd_eventfd": Spec(),
    "fd_fanotify": Spec(),
    "fd_high_many": Spec(),
    "fd_inotify": Spec(),
    "fd_inotify_next_wd": Spec(),
    "fd_modes_flags": Spec(),
    "fd_netlink": Spec(),
    "fd_opath": Spec(),
    "fd_passcred_dgram": Spec(),
    "fd_peercred": Spec(),
    "fd_pidfd": Spec(),
    "fd_pipe_attrs": Spec(),
    "fd_proc_symlink": Spec(),
    "fd_pty": Spec(),
    "fd_pty_queued": Spec(),
    "fd_pty_flow": Spec(),
    "fd_pipe_half_closed": Spec(),
    "fd_pipe_packets": Spec(),
    "fd_scm_inflight": Spec(),
    "fd_scm_named": Spec(),
    "fd_signalfd": Spec(),
    "fd_socketpair_kinds": Spec(),
    "fd_socketpair_opts": Spec(),
    "fd_socketpair_shutdown": Spec(),
    "fd_socketpair_widowed": Spec(),
    "fd_unix_abstract_dgram": Spec(),
    "fd_unix_abstract_kinds": Spec(),
    "fd_unix_deleted_bound": Spec(),
    "fd_unix_listen_accepted": Spec(),
    "fd_unix_listen_backlog": Spec(),
    "fd_unix_peer_gone_named": Spec(),
    "fd_unix_unconnected": Spec(),
    "ipc_mqueue": Spec(RT, refuse=("message queue",)),
    "ipc_msgq": Spec(),
    "ipc_posix_shm": Spec(RT),
    "ipc_sem_named": Spec(PT),
    "ipc_sem_threads": Spec(PT, refuse=("semaphore",)),
    "ipc_sem_undo": Spec(refuse=("semaphore set", "undo adjustments")),
    "ipc_sem_unlinked": Spec(PT),
    "ipc_sysv_shm": Spec(),
    "ipc_sysv_shm_rmid": Spec(),
    "lock_flock": Spec(),
    "lock_lease": Spec(),
    "lock_ofd": Spec(),
    "lock_posix": Spec(),
    "mem_aio": Spec(),
    "mem_aio_unread": Spec(),
    "mem_brk": Spec(),
    "mem_deep_stack": Spec(),
    "mem_deleted_exe": Spec(),
    "mem_dontneed": Spec(),
    "mem_file_cow": Spec(),
    "mem_file_shared_ro": Spec(),
    "mem_file_shared_rw": Spec(),
    "mem_fixed_high": Spec(),
    "mem_ghost_maps": Spec(),
    "mem_growsdown": Spec(),
    "mem_many_maps": Spec(),
    "mem_memfd": Spec(),
    "mem_mprotect": Spec(),
    "mem_mremap": Spec(),
    "mem_remap_churn": Spec(),
    "mem_shared_anon": Spec(),
    "mem_sparse_huge": Spec(),
    "mem_vdso": Spec(),
    "prctl_dumpable": Spec(),
    "prctl_membarrier": Spec(),
    "prctl_misc": Spec(),
    "prctl_pdeathsig": Spec(),
    "prctl_subreaper": Spec(),
    "proc_caps": Spec(),
    "proc_chroot": Spec(),
    "proc_uts_ns": Spec(),
    "proc_cwd_umask": Spec(),
    "proc_ids": Spec(),
    "proc_name_nice_oom": Spec(),
    "proc_personality": Spec(),
    "proc_rlimits": Spec(),
    "proc_rseq": Spec(),
    "proc_sched": Spec(PT),
    "proc_seccomp": Spec(PT),
    "proc_self": Spec(),
    "ref_dnotify": Spec(refuse=("dnotify",)),
    "ref_inotify_queued": Spec(refuse=("inotify", "queued")),
    "ref_io_uring": Spec(refuse=("io_uring",)),
    "ref_mnt_ns": Spec(refuse=("mount namespace",)),
    "ref_passcred_exited": Spec(refuse=("credentials of PID", "has exited")),
    "ref_perf_event": Spec(refuse=("perf_event",)),
    "ref_pipe_outside": Spec(refuse=("pipe", "outside the job")),
    "ref_ptrace_child": Spec(refuse=("traced",)),
    "ref_scm_memfd_inflight": Spec(refuse=("no process of the job holds", "only descriptions")),
    "ref_scm_named_socket": Spec(refuse=("carries a socket bound to a name",)),
    "ref_scm_socket_inflight": Spec(refuse=("socket no process of the job holds",)),
    "ref_sig_flood": Spec(("-DFLOOD=20000",), refuse=("queued signals", "more than 16384"), source="sig_flood"),
    "ref_unix_pending_data": Spec(refuse=("not yet accepted",)),
    "ref_userfaultfd": Spec(refuse=("userfaultfd",)),
    "ref_vfork": Spec(refuse=("vfork",)),
    "ref_zombie_leader": Spec(PT, refuse=("thread",)),
    "sig_actions": Spec(),
    "sig_altstack": Spec(),
    "sig_blocked_mask": Spec(),
    "sig_chld_dfl_nocldwait": Spec(),
    "sig_defaults": Spec(),
    "sig_flood": Spec(),
    "sig_ign_chld_before": Spec(),
    "sig_nocldwait": Spec(),
    "sig_pending_rt": Spec(),
    "sig_pending_std": Spec(),
    "sig_resethand_nodefer": Spec(),
    "sig_restart": Spec(),
    "sig_storm": Spec(),
    "tcp_listen": Spec(),
    "thr_barrier": Spec(PT),
    "thr_condvar": Spec(PT),
    "thr_creds": Spec(PT),
    "thr_join_blocked": Spec(PT),
    "thr_names_affinity": Spec(PT),
    "thr_robust_mutex": Spec(PT),
    "thr_sigmask_pending": Spec(PT),
    "thr_tls_many": Spec(PT),
    "tmr_itimer_fires": Spec(),
    "tmr_itimers": Spec(),
    "tmr_posix": Spec(RT),
    "tmr_timerfd": Spec(),
    "tree_fork_churn": Spec(PT),
    "tree_many_children": Spec(),
    "tree_pipe_widowed": Spec(),
    "tree_pipes": Spec(),
    "tree_sessions": Spec(),
    "tree_stopped_child": Spec(),
    "tree_stopped_tstp": Spec(),
    "tree_stopsig_report": Spec(),
    "tree_zombies": Spec(),
    "tree_zombie_session": Spec(),
    "tree_orphan_session": Spec(),
    "tree_group_leaders_gone": Spec(),
    "udp_queued": Spec(),
    "wait_clock_nanosleep_abs": Spec(),
    "wait_epoll": Spec(),
    "wait_fifo_open": Spec(),
    "wait_futex": Spec(PT),
    "wait_nanosleep": Spec(),
    "wait_pause": Spec(),
    "wait_poll_inf": Spec(),
    "wait_poll_timeout": Spec(),
    "wait_ppoll_mask": Spec(),
    "wait_read_pipe": Spec(),
    "wait_select": Spec(),
    "wait_sigsuspend": Spec(),
    "wait_sigwaitinfo": Spec(),
    "wait_wait4": Spec(),
    "wait_waitid": Spec(),
    "wait_write_full": Spec(),
}


def _existing() -> list[str]:
    missing = sorted(p.stem for p in CORPUS.glob("*.c") if p.stem not in PROGRAMS)
    assert not missing, f"programs without a Spec: {missing}"
    return sorted(PROGRAMS)


def _param_id(name: str) -> str:
    return f"{name}[{PROGRAMS[name].area}]" if PROGRAMS[name].area else name


@pytest.fixture(scope="session")
def corpus_bin(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required (make test installs it)")
    outdir = tmp_path_factory.mktemp("conformance-bin")
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            exe = outdir / name
            source = CORPUS / f"{PROGRAMS[name].source or name}.c"
            res = subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(exe), str(source), *PROGRAMS[name].flags],
                                 capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
            built[name] = exe
        return built[name]

    return build


def _start(exe: Path, tmp_path: Path, procs: Procs) -> tuple[int, subprocess.Popen[bytes], Path, Path, Path]:
    """Start the program; (its PID, the Popen, OUT, GO, WORK) once it is ready.  A program that
    exits before it is ready fails the test at once, with its status."""
    work = tmp_path / "work"
    work.mkdir()
    out, ready, go = tmp_path / "out.txt", tmp_path / "ready", tmp_path / "go"
    job = procs.start([exe, out, ready, go, work])

    def ready_or_exited() -> bool:
        return (ready.exists() and ready.read_text().endswith("\n")) or job.poll() is not None

    wait_until(ready_or_exited, f"{exe.name} to be ready", timeout=HANG)
    assert ready.exists(), f"{exe.name} exited with status {job.returncode} before it was ready"
    return procs.track(read_pid(ready)), job, out, go, work


def _dump(store: Path, pid: int, mode: str) -> None:
    steps = [("predump", pid), ("checkpoint", pid), ("checkpoint", pid, "--kill")] if mode == "incremental" \
        else [("checkpoint", pid, "--kill")]
    for step in steps:
        res = incr(store, *step, timeout=HANG)
        assert res.returncode == 0, f"incr {step[0]} failed ({res.returncode}): {res.stderr}"


def _tracer(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no TracerPid for PID {pid}")


def _all_gone(tree: list[int]) -> bool:
    reap_orphans()
    return not any(os.path.exists(f"/proc/{p}") for p in tree)


def _outcome(pid: int, out: Path) -> selfcheck.Outcome:
    status = wait_exit(pid, timeout=HANG)
    lines = out.read_text().splitlines() if out.exists() else []
    return selfcheck.Outcome(pid=pid, status=status, lines=lines)


def _round_trip(exe: Path, tmp_path: Path, store: Path, procs: Procs, mode: str) -> selfcheck.Outcome:
    pid, job, out, go, _work = _start(exe, tmp_path, procs)
    tree = descendants(pid)
    for p in tree[1:]:
        procs.track(p)
    _dump(store, pid, mode)
    job.wait(timeout=HANG)
    wait_until(lambda: _all_gone(tree), "the checkpointed tree to be gone", timeout=HANG)
    res = incr(store, "restore", "--detach", timeout=HANG)
    assert res.returncode == 0, f"incr restore failed ({res.returncode}): {res.stderr}"
    restored = procs.track(int(res.stdout.split()[-1]))
    go.touch()
    return _outcome(restored, out)


def _refusal(exe: Path, spec: Spec, tmp_path: Path, store: Path, procs: Procs, mode: str) -> selfcheck.Outcome:
    pid, job, out, go, work = _start(exe, tmp_path, procs)
    tree = descendants(pid)
    for p in tree[1:]:
        procs.track(p)
    tracers = {p: _tracer(p) for p in tree}
    culprit = read_pid(work / "culprit") if (work / "culprit").exists() else pid
    steps = [("predump", pid), ("checkpoint", pid)] if mode == "incremental" else [("checkpoint", pid, "--kill")]
    res = None
    for step in steps:
        res = incr(store, *step, timeout=HANG)
        if res.returncode != 0:
            break
    assert res is not None and res.returncode != 0, f"not refused; expected a refusal naming {spec.refuse}"
    lines = res.stderr.splitlines()
    assert res.returncode == 1 and len(lines) == 1, f"refusal not one line (exit {res.returncode}):\n{res.stderr}"
    message = lines[0]
    assert "Traceback" not in message and f"PID {culprit}" in message, message
    for word in spec.refuse:
        assert word.lower() in message.lower(), f"{word!r} not in: {message}"
    assert job.poll() is None, f"the refused job died: {message}"
    for p in tree:
        assert _tracer(p) == tracers[p], f"PID {p} left traced by {_tracer(p)}: {message}"
    go.touch()
    job.wait(timeout=HANG)
    lines_out = out.read_text().splitlines() if out.exists() else []
    return selfcheck.Outcome(pid=pid, status=job.returncode << 8 if job.returncode >= 0 else -job.returncode,
                             lines=lines_out)


@pytest.mark.conformance
@pytest.mark.timeout(TEST_TIMEOUT)
@pytest.mark.parametrize("mode", selfcheck.MODES)
@pytest.mark.parametrize("name", _existing(), ids=_param_id)
def test_conformance(name: str, mode: str, corpus_bin: Callable[[str], Path], tmp_path: Path, store: Path,
                     procs: Procs) -> None:
    spec = PROGRAMS[name]
    exe = corpus_bin(name)
    if spec.refuse:
        outcome = _refusal(exe, spec, tmp_path, store, procs, mode)
    else:
        outcome = _round_trip(exe, tmp_path, store, procs, mode)
    selfcheck.assert_passed(outcome)
