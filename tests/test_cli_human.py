"""The human side of the command line: tables and units people read, progress on a terminal only,
--store where people put it, exit codes as documented, one verdict from `incr check`, the Python
API's exceptions and the README's examples as pasted, a restore that says what it cut back, and
the design notes the README points to."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import Procs, incr, line_count, ok, read_pid, wait_until

ROOT = Path(__file__).parent.parent
N = 40   # the C job's iterations (tests/programs/job.c): gates at N/2 and N/2+5


@pytest.fixture
def idle_job(cprog, tmp_path: Path, procs: Procs) -> int:
    ready = tmp_path / "idle.ready"
    procs.start([cprog("idle"), 8, "random", ready])
    return read_pid(ready)


def incr_argv(*args: str | int | Path) -> list[str]:
    return [sys.executable, "-m", "incr", *(str(a) for a in args)]


# ---------------------------------------------------------------- list and the checkpoint line

def test_durations_counts_and_tables_for_people() -> None:
    from incr.cli.output import count, duration_ms, table

    assert [duration_ms(ms) for ms in (0.42, 6.2, 118.4, 1400, 10575.3, 150_000)] == \
        ["0.42 ms", "6.2 ms", "118 ms", "1.4 s", "10.6 s", "2.5 min"]
    assert [count(n) for n in (812, 9999, 12_345, 524_288, 1_500_000)] == ["812", "9999", "12.3k", "524.3k", "1.5M"]
    assert table(("A", "NUM", "Z"), [("x", "1", "ok"), ("long", "100", "incomplete")], right=(1,)) == \
        ["A     NUM  Z", "x       1  ok", "long  100  incomplete"]


def test_list_is_an_aligned_table_with_human_units(store: Path, idle_job: int) -> None:
    ok(incr(store, "checkpoint", idle_job))
    ok(incr(store, "predump", idle_job))
    ok(incr(store, "checkpoint", idle_job))
    lines = ok(incr(store, "list")).stdout.splitlines()
    header, rows = lines[0], lines[1:]
    assert header.split() == ["ID", "TIME", "KIND", "PID", "COMMAND", "DIRTY", "PAGES", "ADDED", "DOWNTIME", "STATE"]
    assert len(rows) == 3
    state_at = header.index("STATE")
    for row in rows:
        assert row[state_at:] == "ok", (header, row)             # every column starts where its header does
    downtimes = [re.search(r"(\S+ \S+|-)\s+ok$", r) for r in rows]
    for found, kind in zip(downtimes, ("checkpoint", "predump", "checkpoint"), strict=True):
        assert found is not None
        if kind == "predump":
            assert found.group(1).endswith("-")
        else:
            assert re.fullmatch(r"\d+(\.\d+)? (ms|s|min)", found.group(1)), found.group(1)
            value, unit = found.group(1).split()
            assert unit != "ms" or float(value) < 1000, "a downtime of a second or more is in seconds"
    assert "MiB" in rows[0], rows[0]                               # 8 MiB of random pages: bytes added, in units
    listed = json.loads(ok(incr(store, "list", "--json")).stdout)
    assert {"id", "downtime_ms", "bytes_stored", "pages_dirty", "intact", "problems"} <= set(listed[0])


def test_checkpoint_says_one_line_on_stderr_and_its_id_on_stdout(store: Path, idle_job: int) -> None:
    first = ok(incr(store, "checkpoint", idle_job))
    second = ok(incr(store, "checkpoint", idle_job))
    ids = [c["id"] for c in json.loads(ok(incr(store, "list", "--json")).stdout)]
    assert [first.stdout, second.stdout] == [f"{ids[0]}\n", f"{ids[1]}\n"]
    for res, how in ((first, "full"), (second, "incremental")):
        lines = res.stderr.splitlines()
        assert len(lines) == 1, res.stderr
        line = lines[0]
        assert line.startswith(f"incr: checkpoint {ids[[first, second].index(res)][:12]} of PID {idle_job}"), line
        assert f": {how}, frozen " in line and " added, took " in line, line
        assert re.search(r"frozen \d+(\.\d+)? (ms|s),", line), line


# ---------------------------------------------------------------- progress: a terminal, or nothing

def run_with_stderr_on_a_pty(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, what the command wrote to its stderr, a terminal)."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:              # EIO: the last writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=300)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    return p.returncode, p.stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_is_drawn_on_a_terminal_and_never_into_a_pipe(store: Path, idle_job: int, procs: Procs) -> None:
    code, _, err = run_with_stderr_on_a_pty(incr_argv("--store", store, "checkpoint", idle_job))
    assert code == 0, err
    assert "storing pages:" in err and "\r\x1b[K" in err, repr(err)
    assert re.search(r"storing pages: 100% \(8\.\d MiB of 8\.\d MiB", err), repr(err)
    piped = ok(incr(store, "checkpoint", idle_job, "--kill"))
    assert "storing pages" not in piped.stderr and "\r" not in piped.stderr, repr(piped.stderr)
    wait_until(lambda: not os.path.exists(f"/proc/{idle_job}") or _reap(idle_job), "the job to end")

    code, out, err = run_with_stderr_on_a_pty(incr_argv("--store", store, "restore", "--detach"))
    assert code == 0, err
    pid = procs.track(int(out))
    assert pid == idle_job
    assert "restoring pages:" in err and re.search(r"restoring pages: 100%", err), repr(err)
    assert err.rstrip().splitlines()[-1].lstrip("\r\x1b[K").startswith("incr: restored PID"), repr(err)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _reap(pid), "the restored job to end")
    piped = ok(incr(store, "restore", "--detach"))
    procs.track(int(piped.stdout))
    assert "restoring pages" not in piped.stderr and "\r" not in piped.stderr, repr(piped.stderr)


def _reap(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not os.path.exists(f"/proc/{pid}")


# ---------------------------------------------------------------- --store, exit codes, one word

def test_store_is_accepted_after_the_command_too(store: Path, idle_job: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "INCR_STORE"}
    res = subprocess.run(incr_argv("checkpoint", idle_job, "--store", store), capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    listed = subprocess.run(incr_argv("list", "--store", store), capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and res.stdout.strip()[:12] in listed.stdout, listed.stderr
    # Given both ways, the one after the command wins (it is the nearer).
    other = tmp_path / "other"
    before = subprocess.run(incr_argv("--store", other, "list", "--store", store), capture_output=True, text=True,
                            env=env)
    assert before.returncode == 0 and res.stdout.strip()[:12] in before.stdout, before.stderr
    none = subprocess.run(incr_argv("list"), capture_output=True, text=True, env=env)
    assert none.returncode == 2 and "--store DIR" in none.stderr and "INCR_STORE" in none.stderr, none.stderr


def test_every_command_help_says_where_the_store_comes_from() -> None:
    from incr.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = sorted(sub.choices)
    assert {"checkpoint", "list", "restore", "verify", "forget", "prune", "inspect", "predump", "repair"} <= set(names)
    for name in names:
        command = sub.choices[name]
        if command.get_default("needs_store") is False and not command.get_default("takes_store"):
            continue                         # check, bench: they need no store
        text = subprocess.run(incr_argv(name, "--help"), capture_output=True, text=True).stdout
        flat = " ".join(text.split())
        assert "--store DIR" in flat and "INCR_STORE" in flat and f"incr {name} --store DIR" in flat, (name, text)


def test_exit_codes_and_the_word_checkpoint(store: Path, idle_job: int) -> None:
    ok(incr(store, "checkpoint", idle_job))
    for args in (("restore", "--id", "deadbeef"), ("inspect", "deadbeef"), ("inspect", "xyz"),
                 ("restore", "--id", "zz")):
        res = incr(store, *args)
        assert res.returncode == 2, (args, res.returncode, res.stderr)
        assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
        assert "checkpoint" in res.stderr and "snapshot" not in res.stderr, res.stderr
    assert incr(store, "restore", "--at", "banana").returncode == 2
    assert incr(store, "checkpoint", "4194304000").returncode == 1     # a failure, not bad usage

    import incr as api

    ambiguous = api.AmbiguousId("1a2b", 2, "1a2b3c, 1a2b4d")
    assert ambiguous.exit_code == 2 and str(ambiguous).startswith("checkpoint id 1a2b is ambiguous, it matches 2 "
                                                                    "checkpoints"), str(ambiguous)
    assert api.CheckpointNotFound("ab12", store).exit_code == 2


def test_ctrl_c_is_exit_130_without_a_traceback(store: Path, idle_job: int) -> None:
    """Waiting for the store's writer lock (held here), incr is interrupted as a user would."""
    from incr.pagestore import Store as PageStore

    ok(incr(store, "checkpoint", idle_job))
    with PageStore.open(store) as held, held.writer():
        p = subprocess.Popen(incr_argv("--store", store, "checkpoint", idle_job), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stderr is not None
        first = p.stderr.readline()                  # it says it waits for the writer, naming us
        assert str(os.getpid()) in first, first
        p.send_signal(signal.SIGINT)
        _, rest = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, first + rest)
    assert "Traceback" not in rest and "interrupted" in rest, rest


# ---------------------------------------------------------------- incr check

def test_check_ends_with_one_verdict_line() -> None:
    res = ok(incr(None, "check"))
    last = res.stdout.splitlines()[-1]
    assert last.startswith("verdict: checkpoint and restore with the original PIDs work here, incremental with "), last
    report = json.loads(ok(incr(None, "check", "--json")).stdout)
    assert report["verdict"]["ok"] is True and report["verdict"]["text"] == last.removeprefix("verdict: ")

    from incr.cli.check_cmd import verdict

    none = dict.fromkeys(("CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_CHECKPOINT_RESTORE"), False)
    good, line = verdict("x86_64", none, "uffd-wp")
    assert not good and line == ("verdict: checkpoint and restore with the original PIDs will not (checkpoint needs "
                                 "CAP_SYS_PTRACE; restore needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN; run as root)")
    good, line = verdict("x86_64", {**none, "CAP_SYS_PTRACE": True}, "hash")
    assert not good and line.startswith("verdict: checkpoint works here, incremental with the hash tracker only"), line
    assert "restore with the original PIDs will not" in line


# ---------------------------------------------------------------- the Python API

def test_every_error_is_an_incr_error_and_imports_have_no_cycle() -> None:
    for module in ("incr", "incr.engine.errors", "incr.pagestore.errors", "incr.pagestore", "incr.errors",
                   "incr.engine.outside", "incr.cli.main", "incr.timespec"):
        res = subprocess.run([sys.executable, "-c", f"import {module}; import incr; "
                              "assert issubclass(incr.EngineError, incr.Error)"], capture_output=True, text=True)
        assert res.returncode == 0, (module, res.stderr)

    import incr as api
    from incr.dirty import TrackerError
    from incr.jobstate import JobBusy
    from incr.pagestore.gc import ForgetRefused
    from incr.pagestore.writer import WriteFailed

    for cls in (api.IncrError, api.UsageError, api.NoCheckpoint, api.DamagedCheckpoint, api.EngineError,
                api.Unsupported, api.RestoreError, api.PidTaken, api.JobStillRunning, api.StoreError,
                api.StoreLocked, api.CheckpointNotFound, api.AmbiguousId, api.InvalidSnapshotId, api.TimeSpecError,
                TrackerError, JobBusy, ForgetRefused, WriteFailed):
        assert issubclass(cls, api.Error), cls
    assert issubclass(api.TimeSpecError, ValueError)          # argparse takes it as a bad argument
    assert api.Error.__module__ == "incr.errors"


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_python_examples_run_as_pasted(cprog, tmp_path: Path, procs: Procs) -> None:
    """The README's blocks, in order, against a live job: the first takes a checkpoint of `pid` (the
    one name a reader supplies), the job then dies, the second restores it; it finishes as an
    uninterrupted run would."""
    blocks = readme_python_blocks()
    assert len(blocks) == 2 and "incr.checkpoint(pid" in blocks[0] and "incr.restore(" in blocks[1], blocks
    exe = cprog("job")
    ref, run = tmp_path / "ref", tmp_path / "run"
    for d in (ref, run):
        d.mkdir()
        (d / "data.bin").write_bytes(bytes((i * 31 + 7) % 251 for i in range(1 << 20)))
    (ref / "go1").touch()
    (ref / "go2").touch()
    assert procs.start([exe, ref / "out.txt", ref / "data.bin", ref / "go1", ref / "go2", N]).wait(timeout=120) == 0
    job = procs.start([exe, run / "out.txt", run / "data.bin", run / "go1", run / "go2", N])
    wait_until(lambda: line_count(run / "out.txt") >= N // 2, "the job to reach its first gate")

    def paste(block: str, **names: int) -> subprocess.CompletedProcess[str]:
        prelude = "".join(f"{k} = {v}\n" for k, v in names.items())
        return subprocess.run([sys.executable, "-c", prelude + block], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)

    res = paste(blocks[0], pid=job.pid)
    assert res.returncode == 0, res.stderr
    assert job.poll() is None, "the checkpoint leaves the job running"
    (run / "go1").touch()
    wait_until(lambda: line_count(run / "out.txt") >= N // 2 + 5, "the job to reach its second gate")
    job.kill()
    job.wait()
    (run / "go2").touch()
    res = paste(blocks[1])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"restored PID {job.pid}" in res.stdout, res.stdout
    assert (run / "out.txt").read_bytes() == (ref / "out.txt").read_bytes()


# ---------------------------------------------------------------- files cut back, history branched

def test_restoring_an_older_checkpoint_names_what_it_cuts_and_a_later_latest_says_history_branched(
        cprog, tmp_path: Path, store: Path, procs: Procs) -> None:
    exe = cprog("job")
    d = tmp_path / "run"
    d.mkdir()
    (d / "data.bin").write_bytes(bytes((i * 31 + 7) % 251 for i in range(1 << 20)))
    out = d / "out.txt"
    job = procs.start([exe, out, d / "data.bin", d / "go1", d / "go2", N])
    wait_until(lambda: line_count(out) >= N // 2, "the job to reach its first gate")
    older = ok(incr(store, "checkpoint", job.pid)).stdout.strip()
    at_older = out.stat().st_size
    (d / "go1").touch()
    wait_until(lambda: line_count(out) >= N // 2 + 5, "the job to reach its second gate")
    newer = ok(incr(store, "checkpoint", job.pid, "--kill")).stdout.strip()
    job.wait()
    at_newer = out.stat().st_size
    assert at_newer > at_older

    # Back to the older one, before its first gate again: out.txt is cut back, and the restore says so.
    (d / "go1").unlink()
    res = ok(incr(store, "restore", "--id", older, "--detach"))
    pid = procs.track(int(res.stdout))
    assert f"incr: restore cut {out} back from {at_newer} to {at_older} bytes (written after this checkpoint)" \
        in res.stderr.splitlines(), res.stderr
    assert out.stat().st_size == at_older
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _reap(pid), "the restored job to end")

    # The newest checkpoint is on the branch left behind: --latest refuses, saying why.
    res = incr(store, "restore", "--latest")
    assert res.returncode == 1, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    line = lines[0]
    assert f"cannot restore checkpoint {newer[:12]}" in line and str(out) in line, line
    assert f"the restore of the older checkpoint {older[:12]}" in line and "history branched there" in line, line
    assert f"cut it back from {at_newer} to {at_older} bytes" in line and f"--id {older[:12]}" in line, line
    assert out.stat().st_size == at_older, "a refused restore changes nothing"
    record = json.loads((store / "restore-cuts.json").read_text())
    assert record["cuts"][0]["path"] == str(out) and record["cuts"][0]["checkpoint"] == older
    assert (store / "restore-cuts.json").stat().st_mode & 0o777 == 0o600
    assert ok(incr(store, "verify")).returncode == 0                    # the store does not mind it


# ---------------------------------------------------------------- the design notes

def test_the_readme_points_to_the_design_notes_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert "docs/design.md" in links, links
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).is_file(), link
    design = (ROOT / "docs" / "design.md").read_text()
    for heading in ("Architecture", "Checkpoint", "Restore", "The store", "Crash model", "Restore rules"):
        assert re.search(rf"^#+ .*{heading}", design, re.M), heading
    for pointer in ("store-format.md", "crash-model.md"):
        assert f"({pointer})" in design, pointer
