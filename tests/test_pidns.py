"""restore --new-pidns: the job's PIDs (and System V ids) are held here by
other processes (the job died and they were reused), so the tree comes back in
namespaces of its own, where it sees its original PIDs and TIDs, and finishes
as an uninterrupted run would.  Without it, a taken id is refused up front.
(While the job itself runs, both are refused: test_outside_job.py.)"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from pathlib import Path

from engine_tree import descendants
from test_trees import family_tree, gated, kill_tree, reference, start_at_first_gate

from conftest import Procs, incr, ok, read_pid, reap_orphans, wait_until

N = 40


def ns_status(pid: int) -> dict[str, int]:
    """NSpid, NSpgid, NSsid of `pid` in its innermost PID namespace; PPid there too."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    out = {k: int(fields[k].split()[-1]) for k in ("NSpid", "NSpgid", "NSsid")}
    ppid = int(fields["PPid"])
    out["PPid"] = int(ns_line(ppid).split()[-1])
    return out


def inner_tree(root: int) -> list[tuple[int, int, int, int, str]]:
    """family_tree() as the processes inside the namespace see it."""
    states = {p: state for p, *_, state in family_tree(root)}
    out = []
    for p in descendants(root):
        ns = ns_status(p)
        out.append((ns["NSpid"], ns["PPid"], ns["NSpgid"], ns["NSsid"], states[p]))
    return out


def in_nested_pidns() -> list[int]:
    """Processes (zombies reaped first) living in a PID namespace below ours."""
    reap_orphans()
    out = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            if entry.isdigit() and len(ns_line(int(entry)).split()) > 2:
                out.append(int(entry))
    return out


def ns_line(pid: int) -> str:
    return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("NSpid:"))


def hold_pids(cprog, tmp_path: Path, procs: Procs, pids: list[int]) -> None:
    """Unrelated processes take `pids` (tests/programs/pidholder.c), as after the job died."""
    ready = tmp_path / "pids-held"
    procs.start([cprog("pidholder"), ready, *pids])
    read_pid(ready)
    for pid in pids:
        procs.track(pid)


def test_tree_restored_in_a_new_pid_namespace_while_its_pids_are_taken(cprog, tmp_path: Path, store: Path,
                                                                       procs: Procs) -> None:
    argv = gated(cprog("family"))
    expected = reference(argv, tmp_path, procs)
    d, out, job = start_at_first_gate(argv, tmp_path, procs)
    before = family_tree(job.pid)
    ok(incr(store, "checkpoint", job.pid))
    kill_tree([p for p, *_ in before], job, procs)
    hold_pids(cprog, tmp_path, procs, [p for p, *_ in before])       # every PID taken again, the zombie's too

    taken = incr(store, "restore", "--detach")
    assert taken.returncode != 0
    assert f"PID {job.pid}" in taken.stderr and "--new-pidns" in taken.stderr, taken.stderr

    crashed = incr(store, "restore", "--detach", "--new-pidns", env={"INCR_FAULT": "restoring"})
    assert crashed.returncode == -9, crashed.stderr
    wait_until(lambda: not in_nested_pidns(), "the half-restored namespace to be gone")

    res = incr(store, "restore", "--detach", "--new-pidns")
    assert res.returncode == 0, res.stderr
    root = procs.track(int(res.stdout))
    init = procs.track(int(Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()[1]))
    assert ns_status(init)["NSpid"] == 1, "the restored root's parent is the namespace's init"
    assert root != job.pid
    assert {root, init} <= set(in_nested_pidns())
    inside = inner_tree(root)
    assert inside[0] == (job.pid, 1, *before[0][2:]), "the root: its PID, group and session, under init"
    assert inside[1:] == before[1:], "children and the zombie: the same PIDs, parents, groups, sessions"

    again = incr(store, "checkpoint", root)
    assert again.returncode != 0 and "PID namespace" in again.stderr and again.stderr.count("\n") == 1, \
        again.stderr

    (d / "go1").touch()
    (d / "go2").touch()
    wait_until(lambda: b"done" in out.read_bytes(), "the restored family to finish")
    wait_until(lambda: not os.path.exists(f"/proc/{root}"), "the namespace to end with its root")
    assert out.read_bytes() == expected


def test_threads_restored_attached_in_a_new_pid_namespace(cprog, tmp_path: Path, store: Path,
                                                          procs: Procs) -> None:
    argv = gated(cprog("threads", "-pthread"))
    expected = reference(argv, tmp_path, procs)
    d, out, job = start_at_first_gate(argv, tmp_path, procs)
    tids = sorted(int(t) for t in os.listdir(f"/proc/{job.pid}/task"))
    assert len(tids) == 5
    ok(incr(store, "checkpoint", job.pid))
    kill_tree([job.pid], job, procs)
    hold_pids(cprog, tmp_path, procs, [job.pid])
    (d / "go1").touch()
    (d / "go2").touch()

    res = incr(store, "restore", "--new-pidns")      # attached: ends with the job's status
    assert res.returncode == 0, res.stderr
    assert f"(PID {job.pid} in a new PID namespace)" in res.stderr
    assert out.read_bytes() == expected
    assert Path(f"/proc/{job.pid}/comm").read_text() == "pidholder\n", "the PID stayed another's"


def sysv_segments() -> dict[int, int]:
    """shmid -> creator PID of every System V segment in our IPC namespace."""
    rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {int(r.split()[1]): int(r.split()[4]) for r in rows}


def test_shared_memory_restored_in_new_namespaces_while_others_hold_its_ids(
        cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("sharedmem")
    name = f"incr-test-{os.getpid()}-{tmp_path.name}"
    argv = gated(exe, name)
    intruder = -1
    try:
        expected = reference(argv, tmp_path, procs)
        d, out, job = start_at_first_gate(argv, tmp_path, procs, who="the pair")
        pids = descendants(job.pid)
        shmid = next(i for i, cpid in sysv_segments().items() if cpid == job.pid)
        ok(incr(store, "checkpoint", job.pid))
        kill_tree(pids, job, procs)
        wait_until(lambda: shmid not in sysv_segments(), "the job's segment to be gone")
        Path("/proc/sys/kernel/shm_next_id").write_text(str(shmid))     # its id and PIDs are others' now
        intruder = libc.shmget(0, 4096, 0o1000 | 0o600)
        assert intruder == shmid
        hold_pids(cprog, tmp_path, procs, pids)
        segments = sysv_segments()

        res = incr(store, "restore", "--detach", "--new-pidns")
        assert res.returncode == 0, res.stderr
        root = procs.track(int(res.stdout))
        assert os.readlink(f"/proc/{root}/ns/ipc") != os.readlink("/proc/self/ns/ipc"), \
            "System V ids need a namespace of their own too"
        assert sysv_segments() == segments, "the restore made no segment here"
        (d / "go1").touch()
        (d / "go2").touch()
        wait_until(lambda: b"done" in out.read_bytes(), "the restored pair to finish")
        assert out.read_bytes() == expected
    finally:
        if intruder >= 0:
            libc.shmctl(intruder, 0, None)
        Path(f"/dev/shm/{name}").unlink(missing_ok=True)


def test_restore_refuses_when_a_system_v_id_is_taken(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("sharedmem")
    name = f"incr-test-{os.getpid()}-{tmp_path.name}"
    intruder = -1
    try:
        job = start_at_first_gate(gated(exe, name), tmp_path, procs, who="the pair")[2]
        pids = descendants(job.pid)
        shmid = next(i for i, cpid in sysv_segments().items() if cpid == job.pid)
        ok(incr(store, "checkpoint", job.pid))
        for pid in reversed(pids):
            os.kill(pid, signal.SIGKILL)
        job.wait()


        def gone() -> bool:
            reap_orphans()                  # the killed child comes to us, the subreaper
            return shmid not in sysv_segments() and not any(Path(f"/proc/{p}").exists() for p in pids[1:])

        wait_until(gone, "the job and its segment to be gone")

        Path("/proc/sys/kernel/shm_next_id").write_text(str(shmid))     # someone else gets that id
        intruder = libc.shmget(0, 4096, 0o1000 | 0o600)
        assert intruder == shmid
        res = incr(store, "restore", "--detach")
        assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
        assert f"System V segment id {shmid} is in use here" in res.stderr and f"ipcrm -m {shmid}" in res.stderr
        assert not Path(f"/proc/{job.pid}").exists(), "nothing was created"

        libc.shmctl(intruder, 0, None)
        intruder = -1
        res = incr(store, "restore", "--detach")
        assert res.returncode == 0, res.stderr
        procs.track(int(res.stdout))
    finally:
        if intruder >= 0:
            libc.shmctl(intruder, 0, None)
        Path(f"/dev/shm/{name}").unlink(missing_ok=True)


libc = ctypes.CDLL(None, use_errno=True)
