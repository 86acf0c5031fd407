"""Process trees: children with their PIDs and parents, pipes between them with
the data in flight, zombies, process groups and sessions, a shell script."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from engine_tree import descendants

from conftest import Procs, checkpoint_then_kill, incr, line_count, ok, reap_orphans, wait_until
from incr.engine.dump import needs_version_3
from incr.pagestore import Store
from incr.proto import image_pb2

N = 40


def family_tree(pid: int) -> list[tuple[int, int, int, int, str]]:
    """(pid, ppid, pgid, sid, state) of the tree, zombies included (state "Z comm")."""
    out = []
    for p in descendants(pid):
        raw = Path(f"/proc/{p}/stat").read_text()
        fields = raw[raw.rindex(")") + 2:].split()
        state = f"Z {raw[raw.index('(') + 1:raw.rindex(')')]}" if fields[0] == "Z" else "-"
        out.append((p, int(fields[1]), int(fields[2]), int(fields[3]), state))
    return out


def kill_tree(pids: list[int], job: subprocess.Popen[bytes], procs: Procs) -> None:
    """SIGKILL a whole tree (the node failed) and wait until every PID of it is free."""
    for pid in reversed(pids):
        procs.track(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    job.wait()

    def gone() -> bool:
        reap_orphans()              # the killed children come to us, the subreaper, to be reaped
        return not any(os.path.exists(f"/proc/{p}") for p in pids[1:])

    wait_until(gone, "the old tree to be gone")


def in_session(sid: int) -> list[int]:
    """The processes of session `sid`, zombies included."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{entry}/stat").read_text()
                if int(raw[raw.rindex(")") + 2:].split()[3]) == sid:
                    out.append(int(entry))
    return out


def gated(exe: Path, *extra: object) -> Callable[[Path], list[object]]:
    """argv of a gated test program run in a directory d: output d/out.txt, gates d/go1, d/go2."""
    return lambda d: [exe, d / "out.txt", d / "go1", d / "go2", N, *extra]


def start_at_first_gate(argv_of: Callable[[Path], list[object]], tmp_path: Path, procs: Procs,
                        env: dict[str, str] | None = None,
                        who: str = "the job") -> tuple[Path, Path, subprocess.Popen[bytes]]:
    """Start a gated job in tmp_path/run and wait for it at its first gate: (its directory,
    its output, the job)."""
    d = tmp_path / "run"
    d.mkdir()
    out = d / "out.txt"
    job = procs.start(argv_of(d), env={**os.environ, **(env or {})})
    wait_until(lambda: line_count(out) >= N // 2, f"{who} to reach its first gate")
    return d, out, job


def run(argv_of: Callable[[Path], list[object]], tmp_path: Path, store: Path, procs: Procs,
        env: dict[str, str] | None = None) -> tuple[Path, list[tuple[int, int, int, int, str]],
                                                     list[tuple[int, int, int, int, str]]]:
    """Checkpoint a gated job at its first gate, run on, kill the tree, restore it detached:
    (its output, its tree at the checkpoint, its tree right after restore)."""
    d, out, job = start_at_first_gate(argv_of, tmp_path, procs, env)
    before = family_tree(job.pid)
    ok(incr(store, "checkpoint", job.pid))
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= N // 2 + 5, "the job to reach its second gate")
    for pid, *_ in before:
        procs.track(pid)
    for pid, *_ in reversed(before):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    job.wait()

    def gone() -> bool:
        reap_orphans()              # the killed children come to us, the subreaper, to be reaped
        return not any(os.path.exists(f"/proc/{p}") for p, *_ in before[1:])

    wait_until(gone, "the old tree to be gone")
    res = incr(store, "restore", "--detach")
    assert res.returncode == 0, res.stderr
    root = procs.track(int(res.stdout))
    after = family_tree(root)
    (d / "go2").touch()
    return out, before, after


def image_of(store: Path) -> image_pb2.TreeImage:
    """The tree image of the newest checkpoint."""
    with Store.open(store) as st:
        _, snap = st.snapshots()[-1]
    return image_pb2.TreeImage.FromString(snap.payload)


def reference(argv_of: object, tmp_path: Path, procs: Procs, env: dict[str, str] | None = None) -> bytes:
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "go1").touch()
    (ref / "go2").touch()
    p = procs.start(argv_of(ref), env={**os.environ, **(env or {})})  # type: ignore[operator]
    assert p.wait(timeout=120) == 0
    return (ref / "out.txt").read_bytes()


def test_parent_and_children_over_pipes_with_data_in_flight(cprog, tmp_path: Path, store: Path,
                                                             procs: Procs) -> None:
    argv = gated(cprog("family"))
    expected = reference(argv, tmp_path, procs)
    assert expected.endswith(b"done zombie exit 7\n")
    out, before, after = run(argv, tmp_path, store, procs)
    assert after == before, "same PIDs, parents, groups, sessions; the zombie too"
    image = image_of(store)
    assert image.version == (3 if needs_version_3(image) else 1), "no named FIFO: an image older incrs read too"
    assert any(state == "Z family" for *_, state in before)
    wait_until(lambda: out.read_bytes().endswith(b"\n") and b"done" in out.read_bytes(), "the family to finish")
    assert out.read_bytes() == expected


SCRIPT = """
set -e
"$1" "$2/out.txt" "$2/go1" "$2/go2" 40 &
child=$!
wait $child
echo "script saw exit $?" >> "$2/out.txt"
"""


def test_shell_script_launching_a_job_and_waiting_for_it(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("job")
    data = bytes((i * 31 + 7) % 251 for i in range(1 << 20))

    def argv(d: Path) -> list[object]:
        (d / "data.bin").write_bytes(data)
        return ["bash", "-c", SCRIPT.replace("\"$1\" \"$2/out.txt\" \"$2/go1\" \"$2/go2\" 40",
                                             f"\"$1\" \"$2/out.txt\" \"$2/data.bin\" \"$2/go1\" \"$2/go2\" {N}"),
                "script", exe, d]

    expected = reference(argv, tmp_path, procs)
    assert expected.endswith(b"script saw exit 0\n")
    out, before, after = run(argv, tmp_path, store, procs)
    assert [p[:4] for p in after] == [p[:4] for p in before]
    wait_until(lambda: b"script saw exit" in out.read_bytes(), "the script to finish")
    assert out.read_bytes() == expected


def test_socket_pairs_stream_and_datagram_with_queued_messages(cprog, tmp_path: Path, store: Path,
                                                                procs: Procs) -> None:
    argv = gated(cprog("sockpair"))
    expected = reference(argv, tmp_path, procs)
    assert expected.endswith(b"done child 0\n")
    out, before, after = run(argv, tmp_path, store, procs)
    assert after == before
    wait_until(lambda: b"done" in out.read_bytes(), "the pair to finish")
    assert out.read_bytes() == expected


def test_processes_sharing_memory_anonymous_memfd_dev_shm_and_sysv(cprog, tmp_path: Path, store: Path,
                                                              procs: Procs) -> None:
    exe = cprog("sharedmem")
    name = f"incr-test-{os.getpid()}-{tmp_path.name}"

    argv = gated(exe, name)
    try:
        expected = reference(argv, tmp_path, procs)
        assert expected.endswith(b"done 0\n")
        out, before, after = run(argv, tmp_path, store, procs)
        assert after == before
        wait_until(lambda: b"done" in out.read_bytes(), "the pair to finish")
        assert out.read_bytes() == expected
    finally:
        Path(f"/dev/shm/{name}").unlink(missing_ok=True)


def test_incremental_checkpoint_of_a_tree_sees_every_process_writes(cprog, tmp_path: Path, store: Path,
                                                                    procs: Procs) -> None:
    import json

    argv = gated(cprog("family"))
    expected = reference(argv, tmp_path, procs)
    d, out, job = start_at_first_gate(argv, tmp_path, procs)
    tree_pids = [p for p, *_ in family_tree(job.pid)]
    first = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= N // 2 + 5, "the job to reach its second gate")
    second = json.loads(ok(incr(store, "checkpoint", job.pid, "--json")).stdout)
    assert second["parent"] == first["id"] and second["pages_dirty"] < second["pages_total"]
    kill_tree(tree_pids, job, procs)
    (d / "go2").touch()
    res = incr(store, "restore", "--latest")       # incremental: every process's writes must be in it
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == expected


def test_named_fifos_with_data_in_flight(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("fifo")

    def argv(d: Path) -> list[object]:
        (d / "fifos").mkdir(exist_ok=True)
        return [exe, d / "out.txt", d / "go1", d / "go2", N, d / "fifos"]

    expected = reference(argv, tmp_path, procs)
    assert expected.endswith(b"done child exit 0, stash intact\n")
    d, out, job = start_at_first_gate(argv, tmp_path, procs)
    before = family_tree(job.pid)

    with open(d / "fifos" / "down", "rb", buffering=0, opener=lambda p, f: os.open(p, f | os.O_RDWR)) as ours:
        shared = incr(store, "checkpoint", job.pid)
        assert shared.returncode == 1 and shared.stderr.count("\n") == 1, shared.stderr
        assert f"also open in PID {os.getpid()}" in shared.stderr and "outside the job" in shared.stderr
        assert ours.fileno() >= 0
    ok(incr(store, "checkpoint", job.pid))
    image = image_of(store)
    assert image.version == (3 if needs_version_3(image) else 2) and len(image.fifos) == 3
    sizes = sorted(len(f.data) for f in image.fifos)
    assert sizes[-1] == 3000 and sum(sizes[:2]) == 8 * 8, f"8 records in flight, as records or sums: {sizes}"
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= N // 2 + 5, "the job to reach its second gate")
    kill_tree([p for p, *_ in before], job, procs)

    (d / "fifos" / "stash").unlink()
    missing = incr(store, "restore", "--detach")
    assert missing.returncode == 1 and f"mkfifo {d / 'fifos' / 'stash'}" in missing.stderr, missing.stderr
    os.mkfifo(d / "fifos" / "stash")
    res = incr(store, "restore", "--detach")
    assert res.returncode == 0, res.stderr
    root = procs.track(int(res.stdout))
    assert family_tree(root) == before
    (d / "go2").touch()
    wait_until(lambda: b"done" in out.read_bytes(), "the job to finish")
    assert out.read_bytes() == expected


def test_job_forking_and_spawning_threads_all_the_time(cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    """Checkpoints land while children and threads are being created and reaped: the freeze must
    catch every one of them (or its zombie), and the restored job reaps exactly what it expects."""
    exe = cprog("churn", "-pthread")
    d = tmp_path / "run"
    d.mkdir()
    out, stop = d / "out.txt", d / "stop"
    job = procs.start([exe, out, stop, 10**9])
    wait_until(lambda: line_count(out) >= 200, "the job to get going")
    shapes = []
    for _ in range(3):
        ok(incr(store, "checkpoint", job.pid))
        image = image_of(store)
        shapes.append((len(image.processes), sum(len(p.threads) for p in image.processes)))
    assert any(processes > 1 for processes, _ in shapes), f"no checkpoint caught a child: {shapes}"
    at_checkpoint = line_count(out)
    os.killpg(job.pid, 9)
    job.wait()
    pids = [p.pid for p in image.processes] + [t.tid for p in image.processes for t in p.threads]
    # Also the children forked since the checkpoint: a zombie of theirs not reaped yet keeps the
    # session's ID, which is the root's PID, and the restore would find that PID taken.
    wait_until(lambda: reap_orphans() is None and not any(Path(f"/proc/{p}").exists() for p in pids)
               and not in_session(job.pid), "the job to be gone")

    res = incr(store, "restore", "--detach")
    assert res.returncode == 0, res.stderr
    procs.track(int(res.stdout))
    wait_until(lambda: line_count(out) >= at_checkpoint + 500, "the restored job to churn on")
    stop.touch()
    wait_until(lambda: out.read_bytes().endswith(b"\n") and b"done at" in out.read_bytes(), "the job to stop")
    iterations = int(out.read_bytes().rsplit(b"done at ", 1)[1])

    ref = tmp_path / "ref.txt"
    p = procs.start([exe, ref, tmp_path / "no-such-file", iterations])
    assert p.wait(timeout=120) == 0
    assert out.read_bytes() == ref.read_bytes()



ORPHANS = r"""
import ctypes, os, sys, time
kind, root, group = sys.argv[1], os.getpid(), os.getpgrp()
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
if kind == "session":
    # C, orphaned from B, comes to us (a subreaper) in A's session; A runs on.
    libc.prctl(36, 1, 0, 0, 0)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if os.fork() == 0:
                while os.getppid() != root:
                    time.sleep(0.001)
                os.write(w, b"%d\n" % os.getpid())
                time.sleep(600)
            os._exit(0)
        os.wait()
        time.sleep(600)
else:
    # M joins G's group; G moves to ours: M's group has a leader no longer in it.
    g = os.fork()
    if g == 0:
        os.setpgid(0, 0)
        os.read(r, 1)
        os.setpgid(0, group)
        time.sleep(600)
    os.setpgid(g, g)
    m = os.fork()
    if m == 0:
        os.setpgid(0, g)
        time.sleep(600)
    while os.getpgid(m) != g:
        time.sleep(0.001)
    os.write(w, b"x")
    while os.getpgid(g) != group:
        time.sleep(0.001)
    os.write(w, b"%d\n" % m)
print(os.read(r, 64).decode().strip().lstrip("x"), flush=True)
time.sleep(600)
"""


def test_a_session_or_group_the_restore_cannot_make_is_refused(tmp_path: Path, store: Path, procs: Procs) -> None:
    # A process in a session neither its own nor its parent's, whose leader runs elsewhere in the
    # job; one in a process group whose leader has moved to another: restored, each would be in
    # its parent's (engine/sessions.py).
    import sys
    for kind, words in (("session", ("session", "is not a zombie child")), ("group", ("process group", "has left it"))):
        job = procs.start([sys.executable, "-c", ORPHANS, kind], stdout=subprocess.PIPE)
        assert job.stdout is not None
        culprit = int(job.stdout.readline())
        tree = [job.pid, *descendants(job.pid)]
        for p in tree:
            procs.track(p)
        res = incr(store, "checkpoint", job.pid)
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and f"PID {culprit}" in lines[0] and all(w in lines[0] for w in words), lines
        assert job.poll() is None and all(Path(f"/proc/{p}").exists() for p in tree)


def test_a_restore_whose_sessions_come_out_wrong_stops_before_the_job_runs(cprog: Callable[..., Path], tmp_path: Path,
                                                                           store: Path, procs: Procs) -> None:
    # The restore checks every process's parent, session and group against the image before it
    # makes any of the job: with the orphans of a session forked by their parent instead (as
    # before engine/sessions.py), the restore must fail in one line, leaving no process behind.
    import sys
    work = tmp_path / "work"
    work.mkdir()
    job = procs.start([cprog("conformance/tree_zombie_session"), tmp_path / "out", tmp_path / "ready",
                       tmp_path / "go", work])
    wait_until(lambda: (tmp_path / "ready").exists(), "the job to be ready")
    tree = checkpoint_then_kill(store, job, procs, "kill")
    wrong = ("import sys; import incr.engine.sessions as s; s.orphans = lambda images: {}; "
             "from incr.cli import main; main.main(sys.argv[1:])")
    res = subprocess.run([sys.executable, "-c", wrong, "--store", str(store), "restore", "--detach"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "came back in session" in lines[0], lines
    reap_orphans()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in tree)
    ok(incr(store, "restore", "--detach"))             # the checkpoint itself is unharmed
    for pid in tree:
        procs.track(pid)
