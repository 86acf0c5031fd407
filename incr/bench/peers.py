"""The peers of `incr bench --compare`: CRIU and DMTCP, driven the way their own users drive them.

A Peer starts nothing at construction.  The harness starts each job itself, with `launch_prefix(images)`
in front of its argv: the job's stdio on files or /dev/null, best in a session of its own (CRIU refuses a
job whose session lies outside the tree unless told --shell-job, which we add when the job is not a session
leader).  It checkpoints the job while it runs, kills the job's whole tree and reaps every process of it
before `restore` (CRIU restores the same PIDs, and a zombie still holds its PID, its group's and its
session's), and kills the restored job by the PID that `restore` returns.  `close()` ends what the Peer
itself started.  A job that keeps a regular file open and changes its size after the checkpoint cannot be
restored by CRIU ("File ... has bad size"): a workload's output is to be opened, appended and closed.

Figures are each peer's own account where it gives one: CRIU's frozen time from its stats-dump.img;
for DMTCP the time stamps of its coordinator's log (millisecond resolution), which bracket the freeze:
frozen_ms is the lower bound, frozen_max_ms the upper (see _CKPT_RELEASED).
Wall times are ours, on the monotonic clock, until the checkpoint is complete on disk or the restored
job runs again.  Binaries are looked up on PATH, then in the cache dir that benchmarks/peers/build.sh
fills (INCR_PEERS_DIR, else $XDG_CACHE_HOME/incr/peers, else ~/.cache/incr/peers).
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# A peer's checkpoint or restore that takes longer than this has hung: it is reported, not waited for.
TIMEOUT_S = 600.0
# How often a wait on a log or on the coordinator looks again.  Polling, not a notification: DMTCP tells its
# progress only in its log and in answers to dmtcp_command; 2 ms is far below the figures it times.
POLL_S = 0.002
# Our own notes in an images dir (what the restore needs to know); not counted in the images' bytes.
NOTES = "incr-peer.json"
MIN_CRIU = (4, 0)
MIN_DMTCP = (3, 0)


class PeerFailed(Exception):
    """A peer's command failed or did not finish; the message is one line with the tail of its log."""


@dataclass(frozen=True)
class PeerCheckpoint:
    frozen_ms: float | None  # how long the job was stopped, by the peer's own account; None if unknowable
    wall_s: float  # the checkpoint command until the checkpoint is complete on disk
    bytes: int  # bytes of the images this checkpoint wrote
    # An upper bound of the freeze, when the peer's account only brackets it (DMTCP: frozen_ms is the lower).
    frozen_max_ms: float | None = None


@dataclass(frozen=True)
class PeerRestore:
    wall_s: float  # until the restored job runs again
    pid: int  # host PID of the restored job's root


class Peer(abc.ABC):
    name: str
    version: str

    @abc.abstractmethod
    def absent(self) -> str | None:
        """None when the peer is usable here; else one line saying why not."""

    @abc.abstractmethod
    def launch_prefix(self, images: Path) -> list[str]:
        """The argv prefix that starts a job under this peer, its checkpoints going to `images`."""

    @abc.abstractmethod
    def checkpoint(self, pid: int, images: Path) -> PeerCheckpoint:
        """Checkpoint the job whose root is `pid` into `images`; the job keeps running."""

    @abc.abstractmethod
    def restore(self, images: Path) -> PeerRestore:
        """Restore the job checkpointed in `images` (the original is gone); returns once it runs."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop what this Peer started (coordinators, restored jobs still running), by PID."""


def peers_dir() -> Path:
    """Where benchmarks/peers/build.sh installs the peers."""
    if os.environ.get("INCR_PEERS_DIR"):
        return Path(os.environ["INCR_PEERS_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "incr" / "peers"


def find_binary(name: str) -> Path | None:
    """`name` on PATH, else in the cache dir's */bin (the newest version there first)."""
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    built = [p for p in peers_dir().glob(f"*/bin/{name}") if os.access(p, os.X_OK)]
    return max(built, key=lambda p: _version_key(p.parent.parent.name)) if built else None


def peers(names: Sequence[str]) -> list[Peer]:
    """The peers asked for by name: "criu" is CRIU; "dmtcp" is DMTCP without and with gzip."""
    made: list[Peer] = []
    for name in names:
        if name == "criu":
            made.append(Criu())
        elif name == "dmtcp":
            made += [Dmtcp(gzip=False), Dmtcp(gzip=True)]
        else:
            raise ValueError(f"unknown peer {name!r}: the peers are criu and dmtcp")
    return made


def _version_key(text: str) -> tuple[int, ...]:
    found = re.search(r"(\d+(?:\.\d+)*)", text)
    return tuple(int(n) for n in found.group(1).split(".")) if found else ()


def _tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log, on one line."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else f"(empty log {path})"


def _tail_or_output(log: Path, res: subprocess.CompletedProcess[str]) -> str:
    """The tail of a command's log, or of what it printed when it wrote no log (bad arguments...)."""
    if log.exists():
        return _tail(log)
    kept = [line.strip() for line in (res.stdout + res.stderr).splitlines() if line.strip()][-3:]
    return " | ".join(kept) if kept else f"(no log at {log}, no output)"


def _images_bytes(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _wait_for(done: Callable[[], bool], what: str, log: Path, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise PeerFailed(f"timed out after {timeout:.0f} s waiting for {what}: {_tail(log)}")
        time.sleep(POLL_S)


def _start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), to tell a process from a reused PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


class _Owned:
    """Processes a Peer made and must end: PID and start time, so that a reused PID is never killed."""

    def __init__(self) -> None:
        self.procs: dict[int, int] = {}
        self.popens: list[subprocess.Popen[bytes]] = []

    def add(self, pid: int) -> None:
        started = _start_time(pid)
        if started is not None:
            self.procs[pid] = started

    def kill_all(self) -> None:
        for pid, started in self.procs.items():
            if _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.procs.clear()
        for p in self.popens:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                p.wait(timeout=10)
        self.popens.clear()


# ---------------------------------------------------------------------------------------------------- CRIU

# Images of CRIU's service files start with IMG_SERVICE_MAGIC then the file's own magic (criu/include/magic.h).
_IMG_SERVICE_MAGIC = 0x55105940
_STATS_MAGIC = 0x57093306
# Files of an images dir that are not the checkpoint: logs, our notes, the restore's pidfile.
_CRIU_NOT_IMAGES = frozenset({"dump.log", "restore.log", NOTES, "restore.pid"})


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _protobuf_fields(buf: bytes) -> dict[int, int | bytes]:
    """The varint and length-delimited fields of one protobuf message (the last of each number wins)."""
    fields: dict[int, int | bytes] = {}
    at = 0
    while at < len(buf):
        key, at = _varint(buf, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], at = _varint(buf, at)
        elif wire == 2:
            length, at = _varint(buf, at)
            fields[number], at = buf[at:at + length], at + length
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"wire type {wire}")
    return fields


def criu_frozen_ms(stats_image: Path) -> float:
    """frozen_time of the dump stats in CRIU's stats-dump.img (images/stats.proto: stats_entry.dump.frozen_time,
    in microseconds): from the moment every task is frozen to their resumption, the memory written in between."""
    raw = stats_image.read_bytes()
    magics = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little")
    if magics != (_IMG_SERVICE_MAGIC, _STATS_MAGIC):
        raise ValueError(f"{stats_image}: not a CRIU stats image (magics {magics[0]:#x} {magics[1]:#x})")
    size = int.from_bytes(raw[8:12], "little")
    dump = _protobuf_fields(raw[12:12 + size]).get(1)
    if not isinstance(dump, bytes):
        raise ValueError(f"{stats_image}: no dump stats")
    frozen_us = _protobuf_fields(dump).get(2)
    if not isinstance(frozen_us, int):
        raise ValueError(f"{stats_image}: no frozen_time")
    return frozen_us / 1000


class Criu(Peer):
    """CRIU: `criu dump --leave-running` while the job runs, `criu restore -d` after it was killed."""

    name = "criu"

    def __init__(self) -> None:
        self.binary = find_binary("criu")
        self.version = self._read_version()
        self._absent: str | None = None
        self._checked = False
        self.check_output = ""
        self._owned = _Owned()

    def _read_version(self) -> str:
        if self.binary is None:
            return ""
        res = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"Version:\s*(\S+)", res.stdout)
        return found.group(1) if found else ""

    def absent(self) -> str | None:
        if not self._checked:
            self._absent = self._why_absent()
            self._checked = True
        return self._absent

    def _why_absent(self) -> str | None:
        if self.binary is None:
            return (f"criu: not found on PATH nor in {peers_dir()}/*/bin "
                    f"(benchmarks/peers/build.sh criu builds it)")
        if not self.version:
            return f"criu: {self.binary} --version names no version"
        if _version_key(self.version) < MIN_CRIU:
            return f"criu: {self.binary} is version {self.version}, older than 4.0"
        res = subprocess.run([str(self.binary), "check"], capture_output=True, text=True, check=False,
                             stdin=subprocess.DEVNULL)
        self.check_output = (res.stdout + res.stderr).strip()
        if res.returncode != 0:
            last = self.check_output.splitlines()[-1] if self.check_output else f"exit status {res.returncode}"
            return f"criu: `criu check` fails here: {last}"
        return None

    def launch_prefix(self, images: Path) -> list[str]:
        return []

    def _binary(self) -> str:
        why = self.absent()
        if why is not None or self.binary is None:
            raise PeerFailed(why or "criu: not found")
        return str(self.binary)

    def checkpoint(self, pid: int, images: Path) -> PeerCheckpoint:
        criu = self._binary()
        images.mkdir(parents=True, exist_ok=True)
        if any(images.iterdir()):
            raise PeerFailed(f"criu: images dir {images} is not empty (one checkpoint per dir)")
        options = _criu_job_options(pid)
        argv = [criu, "dump", "--tree", str(pid), "--images-dir", str(images), "--leave-running",
                "--log-file", "dump.log", *options]
        start = time.monotonic()
        res = _run_peer(argv, images)
        wall = time.monotonic() - start
        if res.returncode != 0:
            raise PeerFailed(f"criu dump of PID {pid} failed (exit status {res.returncode}): "
                             f"{_tail_or_output(images / 'dump.log', res)}")
        (images / NOTES).write_text(json.dumps({"peer": "criu", "options": options}))
        try:
            frozen: float | None = criu_frozen_ms(images / "stats-dump")
        except (OSError, ValueError):
            frozen = None
        images_written = [p for p in images.iterdir() if p.is_file() and p.name not in _CRIU_NOT_IMAGES]
        return PeerCheckpoint(frozen_ms=frozen, wall_s=wall, bytes=_images_bytes(images_written))

    def restore(self, images: Path) -> PeerRestore:
        criu = self._binary()
        notes = json.loads((images / NOTES).read_text()) if (images / NOTES).exists() else {}
        pidfile = images / "restore.pid"
        pidfile.unlink(missing_ok=True)
        argv = [criu, "restore", "--images-dir", str(images), "--restore-detached", "--pidfile", str(pidfile),
                "--log-file", "restore.log", *notes.get("options", [])]
        start = time.monotonic()
        res = _run_peer(argv, images)
        wall = time.monotonic() - start
        if res.returncode != 0:
            raise PeerFailed(f"criu restore from {images} failed (exit status {res.returncode}): "
                             f"{_tail_or_output(images / 'restore.log', res)}")
        pid = int(pidfile.read_text().split()[0])
        self._owned.add(pid)
        return PeerRestore(wall_s=wall, pid=pid)

    def close(self) -> None:
        self._owned.kill_all()


def _run_peer(argv: list[str], images: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PeerFailed(f"{Path(argv[0]).name} {argv[1]} on {images} did not finish in {TIMEOUT_S:.0f} s "
                         f"(killed)") from None


def _criu_job_options(pid: int) -> list[str]:
    """--shell-job when the job's session is not its own (CRIU refuses a session leader outside the tree)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError as e:
        raise PeerFailed(f"criu: no process {pid}: {e.strerror}") from None
    session = int(fields[3])
    return [] if session == pid else ["--shell-job"]


# --------------------------------------------------------------------------------------------------- DMTCP

# Lines of the coordinator's log (src/dmtcp_coordinator.cpp), each after "[YYYY-MM-DDTHH:MM:SS.mmm, pid, tid,
# Note]".  A worker suspends its user threads on the first, writes its image, waits at the DMT:WriteCkpt barrier
# (whose release the coordinator logs as the second, "all workers running", although none runs yet), renames its
# image into place, sends its name (the last name makes the third line, logged after the coordinator has written
# its restart script) and resumes.  The log brackets the freeze: a 1 ms probe inside a 256 MiB job saw its stall
# end 43-49 ms after the second line and 44-48 ms before the third, in each of 4 runs (no gzip and gzip).
_LOG_STAMP = re.compile(r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}), ")
_CKPT_START = "starting checkpoint; incrementing generation; suspending all nodes"
_CKPT_RELEASED = "Checkpoint complete; all workers running"
_CKPT_WRITTEN = "Checkpoint complete. Wrote restart script"
# The dir inside an images dir where DMTCP writes, before each checkpoint's images are moved out of it.
STAGING = ".dmtcp-staging"
# dmtcp_command --list: "N, PROG[virtPID:realPID]@HOST, UNIQUEPID, WorkerState::STATE, BARRIER"
_LIST_ENTRY = re.compile(r"^\d+, .*?\[(\d+):(\d+)\]@[^,]*, [^,]*, (?:WorkerState::)?(\w+)", re.MULTILINE)


def _log_stamp(line: str) -> datetime | None:
    found = _LOG_STAMP.search(line)
    return datetime.fromisoformat(found.group(1)) if found else None


@dataclass(frozen=True)
class _Client:
    virtual_pid: int
    real_pid: int
    state: str


def _open_anywhere(paths: Sequence[Path]) -> bool:
    """Whether any process has one of these files open (by inode, whatever name it was opened under)."""
    inodes = set()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            inodes.add((st.st_dev, st.st_ino))
    names = {p.name for p in paths} | {p.name + ".temp" for p in paths}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.path.basename(os.readlink(fd)) in names:
                        st = fd.stat()
                        if (st.st_dev, st.st_ino) in inodes:
                            return True
    return False


class _Coordinator:
    """One dmtcp_coordinator of ours, on a free port of 127.0.0.1, its log in a file; a DMTCP computation is
    every process connected to it, so each job gets a coordinator of its own."""

    def __init__(self, bindir: Path, workdir: Path, ckptdir: Path) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.ckptdir = ckptdir
        self.log = workdir / "coordinator.log"
        self.tmpdir = workdir / "tmp"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        port_file = workdir / "port"
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [str(bindir / "dmtcp_coordinator"), "--coord-port", "0", "--port-file", str(port_file),
                 "--ckptdir", str(ckptdir), "--tmpdir", str(self.tmpdir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        _wait_for(lambda: self._port_written(port_file), "dmtcp_coordinator to listen", self.log, timeout=30)
        self.port = int(port_file.read_text())
        self.had_clients = False  # once a job ran in it: a session whose clients are then all gone is done

    def _port_written(self, port_file: Path) -> bool:
        if self.popen.poll() is not None:
            raise PeerFailed(f"dmtcp_coordinator exited with status {self.popen.returncode}: {_tail(self.log)}")
        return port_file.exists() and port_file.read_text().strip().isdigit()

    def command(self, *args: str) -> str:
        argv = [str(self.bindir / "dmtcp_command"), "--coord-host", "127.0.0.1", "--coord-port", str(self.port),
                *args]
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
                             timeout=60)
        if res.returncode != 0:
            said = (res.stdout + res.stderr).strip().splitlines()
            raise PeerFailed(f"dmtcp_command {' '.join(args)} failed (exit status {res.returncode}): "
                             f"{said[-1] if said else 'no output'} | {_tail(self.log)}")
        return res.stdout + res.stderr

    def clients(self) -> list[_Client]:
        found = [_Client(int(v), int(r), s) for v, r, s in _LIST_ENTRY.findall(self.command("--list"))]
        self.had_clients = self.had_clients or bool(found)
        return found

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> list[str]:
        """The log's lines from byte `offset` on (the log grows by some lines per command: never reread whole)."""
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace").splitlines()

    def stop(self) -> None:
        """Kill the computation's processes by PID, then the coordinator."""
        if self.popen.poll() is None:
            with contextlib.suppress(PeerFailed, subprocess.TimeoutExpired):
                for client in self.clients():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(client.real_pid, signal.SIGKILL)
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


class Dmtcp(Peer):
    """DMTCP: jobs under dmtcp_launch joined to a coordinator of ours; `dmtcp_command --checkpoint`, its
    completion read from the coordinator's log (`--bcheckpoint` of 4.2 returns before the images are
    complete); dmtcp_restart on a new coordinator.  gzip=True is DMTCP's default (images through gzip)."""

    def __init__(self, gzip: bool) -> None:
        self.gzip = gzip
        self.name = "dmtcp-gzip" if gzip else "dmtcp"
        launch = find_binary("dmtcp_launch")
        self.bindir = launch.parent if launch is not None else None
        self.version = self._read_version()
        self._workdir: Path | None = None
        self._sessions: list[_Coordinator] = []
        self._session_count = 0
        self._staging: set[Path] = set()
        self._owned = _Owned()

    def _read_version(self) -> str:
        if self.bindir is None:
            return ""
        res = subprocess.run([str(self.bindir / "dmtcp_launch"), "--version"], capture_output=True, text=True,
                             check=False, stdin=subprocess.DEVNULL)
        found = re.search(r"\b(\d+\.\d+(?:\.\d+)?)\b", res.stdout + res.stderr)
        return found.group(1) if found else ""

    def absent(self) -> str | None:
        if self.bindir is None:
            return (f"{self.name}: dmtcp_launch not found on PATH nor in {peers_dir()}/*/bin "
                    f"(benchmarks/peers/build.sh dmtcp builds it)")
        for tool in ("dmtcp_command", "dmtcp_coordinator", "dmtcp_restart"):
            if not os.access(self.bindir / tool, os.X_OK):
                return f"{self.name}: {tool} missing beside {self.bindir / 'dmtcp_launch'}"
        if not self.version:
            return f"{self.name}: {self.bindir / 'dmtcp_launch'} --version names no version"
        if _version_key(self.version) < MIN_DMTCP:
            return f"{self.name}: DMTCP {self.version} is older than 3.0"
        if self.gzip and shutil.which("gzip") is None:
            return f"{self.name}: gzip not found on PATH"
        return None

    def _bindir(self) -> Path:
        why = self.absent()
        if why is not None or self.bindir is None:
            raise PeerFailed(why or f"{self.name}: not found")
        return self.bindir

    def _new_session(self, images: Path) -> _Coordinator:
        """A coordinator for one job; its images are written into a staging dir inside `images` (same file
        system, so the move of each checkpoint's images to the caller's dir is a rename): DMTCP writes every
        checkpoint of a process under one name, which would overwrite the previous one."""
        bindir = self._bindir()
        self._stop_finished_sessions()
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"incr-{self.name}-"))
        staging = images / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        self._staging.add(staging)
        self._session_count += 1
        session = _Coordinator(bindir, self._workdir / f"session-{self._session_count}", staging)
        self._sessions.append(session)
        return session

    def _stop_finished_sessions(self) -> None:
        """Coordinators whose jobs have all gone (killed, or restored elsewhere) serve nothing any more."""
        finished = []
        for session in self._sessions:
            with contextlib.suppress(PeerFailed, subprocess.TimeoutExpired):
                if session.popen.poll() is not None or (session.had_clients and not session.clients()):
                    finished.append(session)
        for session in finished:
            session.stop()
            self._sessions.remove(session)
            shutil.rmtree(session.workdir, ignore_errors=True)

    def _worker_options(self, session: _Coordinator) -> list[str]:
        return ["--coord-host", "127.0.0.1", "--coord-port", str(session.port), "--join-coordinator",
                "--ckptdir", str(session.ckptdir), "--tmpdir", str(session.tmpdir)]

    def launch_prefix(self, images: Path) -> list[str]:
        session = self._new_session(images.resolve())
        gzip = [] if self.gzip else ["--no-gzip"]
        return [str(session.bindir / "dmtcp_launch"), *self._worker_options(session), *gzip]

    def _session_of(self, pid: int) -> tuple[_Coordinator, list[_Client]]:
        for session in self._sessions:
            if session.popen.poll() is not None:
                continue
            clients = session.clients()
            if any(c.real_pid == pid for c in clients):
                return session, clients
        raise PeerFailed(f"{self.name}: PID {pid} is in no DMTCP computation of ours "
                         f"(start it with launch_prefix(), or restore it)")

    def checkpoint(self, pid: int, images: Path) -> PeerCheckpoint:
        session, clients = self._session_of(pid)
        root = next(c for c in clients if c.real_pid == pid)
        seen = session.log_size()
        start = time.monotonic()
        session.command("--checkpoint")
        _wait_for(lambda: self._checkpoint_done(session, seen), f"{self.name}'s checkpoint of PID {pid}",
                  session.log)
        wall = time.monotonic() - start
        staged = sorted(session.ckptdir.glob("ckpt_*.dmtcp"))
        # With gzip the image is written by a gzip process of its own, which may still be flushing when the
        # worker has renamed the file into place and reported it: complete means no process has it open.
        # (Never seen here: gzip had always closed it by then.  Our look, 4-11 ms, is not the peer's time.)
        if _open_anywhere(staged):
            _wait_for(lambda: not _open_anywhere(staged), f"{self.name}'s images to be closed", session.log)
            wall = time.monotonic() - start
        images = images.resolve()
        images.mkdir(parents=True, exist_ok=True)
        written = [Path(shutil.move(p, images / p.name)) for p in staged]
        (images / NOTES).write_text(json.dumps({"peer": self.name, "root_virtual_pid": root.virtual_pid,
                                                "images": [p.name for p in written]}))
        lines = session.log_since(seen)
        # The lower bound of the freeze is frozen_ms: a comparison with incr then never flatters incr.
        return PeerCheckpoint(frozen_ms=self._span_ms(lines, _CKPT_RELEASED), wall_s=wall,
                              bytes=_images_bytes(written), frozen_max_ms=self._span_ms(lines, _CKPT_WRITTEN))

    def _checkpoint_done(self, session: _Coordinator, seen: int) -> bool:
        if session.popen.poll() is not None:
            raise PeerFailed(f"{self.name}: the coordinator exited during a checkpoint: {_tail(session.log)}")
        return any(_CKPT_WRITTEN in line for line in session.log_since(seen))

    @staticmethod
    def _span_ms(lines: list[str], end: str) -> float | None:
        """From the coordinator's order to suspend to the first line with `end` after it."""
        started = next((_log_stamp(line) for line in lines if _CKPT_START in line), None)
        ended = next((_log_stamp(line) for line in lines if end in line), None)
        if started is None or ended is None:
            return None
        return (ended - started).total_seconds() * 1000

    def restore(self, images: Path) -> PeerRestore:
        images = images.resolve()
        notes = json.loads((images / NOTES).read_text()) if (images / NOTES).exists() else {}
        ckpts = [images / n for n in notes.get("images", [])] or sorted(images.glob("ckpt_*.dmtcp"))
        if not ckpts:
            raise PeerFailed(f"{self.name}: no ckpt_*.dmtcp in {images}")
        session = self._new_session(images)
        restart_log = session.workdir / "restart.log"
        start = time.monotonic()
        with restart_log.open("ab") as log:
            popen = subprocess.Popen([str(session.bindir / "dmtcp_restart"), *self._worker_options(session),
                                      *map(str, ckpts)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        # Not in a session of its own: dmtcp_restart makes the job a session leader again itself (setsid)
        # when it was one, and setsid fails in a process that already leads one.
        self._owned.popens.append(popen)
        _wait_for(lambda: self._restored(session, popen, restart_log, len(ckpts)),
                  f"{self.name}'s restore from {images}", restart_log)
        wall = time.monotonic() - start
        clients = session.clients()
        want = notes.get("root_virtual_pid")
        root = next((c.real_pid for c in clients if c.virtual_pid == want), popen.pid)
        for client in clients:
            self._owned.add(client.real_pid)
        return PeerRestore(wall_s=wall, pid=root)

    def _restored(self, session: _Coordinator, popen: subprocess.Popen[bytes], log: Path, count: int) -> bool:
        if popen.poll() is not None and popen.returncode != 0:
            raise PeerFailed(f"{self.name}: dmtcp_restart exited with status {popen.returncode}: {_tail(log)}")
        clients = session.clients()
        return len(clients) == count and all(c.state == "RUNNING" for c in clients)

    def close(self) -> None:
        for session in self._sessions:
            session.stop()
        self._sessions.clear()
        self._owned.kill_all()
        for staging in self._staging:
            shutil.rmtree(staging, ignore_errors=True)
        self._staging.clear()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
