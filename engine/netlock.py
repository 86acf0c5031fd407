"""The network lock: no packet to or from the job's TCP and UDP ports while incr reads its
connections.  Dump and its undoing.

TCP repair reads a connection's sequence numbers and queues, one socket after the other.  A
segment that crossed between two of those reads (a window opening lets a frozen sender's
queued bytes go out; the receiver, read before, never has them, the sender, read after, counts
them acknowledged) would be lost to the restored job.  So, as CRIU's `--network-lock nftables`
does, every packet whose source or destination port is one of the job's is dropped while the
job's sockets are read: TCP sends it again later, the peer sees only a delay.

The lock is an nftables table of its own, `incr_lock_<incr's PID>`, noted in the job's journal
(leftovers.py, kind "netlock") before it is made and cleared once it is gone: a SIGKILLed incr
leaves it behind, and the next command on the job takes it out (`incr check` lists any left).

A job killed by its checkpoint whose connections lead outside it (checkpoint --kill
--tcp-established) keeps a lock on their ports until it is restored, `incr_hold_<root PID>`: a
packet of its peers answered meanwhile (a reset: no socket is there) would end the connections the
restore brings back (Hold).  Noted in the job's journal while the job lives; `incr restore` of the
checkpoint takes it out once the job runs again; `incr check` lists those that wait.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from .errors import EngineError
from .leftovers import Journal, Leftover, drop_netlock, netlock_exists, nft

TABLE_PREFIX = "incr_lock_"
HOLD_PREFIX = "incr_hold_"


class _Library:
    """libnftables in incr's own process: the lock is taken and dropped while the job is frozen,
    and each run of the nft command cost ~12 ms of that (measured here), the library ~1 ms."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("nft_ctx_new failed")
        lib.nft_ctx_buffer_error(self.ctx)

    def run(self, commands: str) -> str:
        """Runs `commands` (nft syntax); "" or what nft said was wrong."""
        if self.lib.nft_run_cmd_from_buffer(self.ctx, commands.encode()) == 0:
            return ""
        said = self.lib.nft_ctx_get_error_buffer(self.ctx) or b""
        return said.decode(errors="replace").strip() or "failed"


_library: _Library | None = None


def _run(commands: str) -> str:
    """`commands` run through libnftables, or the nft command where the library will not load;
    "" or what went wrong."""
    global _library
    if _library is None:
        try:
            _library = _Library()
        except (OSError, AttributeError):
            cmd = nft()
            if cmd is None:
                return "nftables is not installed (apt-get install nftables)"
            res = subprocess.run([cmd, "-f", "-"], input=commands, capture_output=True, text=True, check=False)
            return "" if res.returncode == 0 else res.stderr.strip() or f"nft: exit status {res.returncode}"
    return _library.run(commands)


def unavailable() -> str:
    """Why the lock cannot be taken here ("" when it can)."""
    cmd = nft()
    if cmd is None:
        return "nftables is not installed (apt-get install nftables)"
    res = subprocess.run([cmd, "list", "tables"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return f"nft cannot list tables ({res.stderr.strip() or 'exit status ' + str(res.returncode)})"
    return ""


def left_behind() -> list[str]:
    """Lock tables whose incr is gone (killed before it could take its lock out)."""
    cmd = nft()
    if cmd is None:
        return []
    res = subprocess.run([cmd, "list", "tables"], capture_output=True, text=True, check=False)
    out = []
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[:2] == ["table", "inet"] and parts[2].startswith(TABLE_PREFIX):
            owner = parts[2][len(TABLE_PREFIX):]
            if not owner.isdigit() or not os.path.exists(f"/proc/{owner}"):
                out.append(parts[2])
    return out


def held() -> list[str]:
    """Locks kept for the restore of jobs killed with connections leading outside (Hold)."""
    cmd = nft()
    if cmd is None:
        return []
    res = subprocess.run([cmd, "list", "tables"], capture_output=True, text=True, check=False)
    return [parts[2] for parts in (line.split() for line in res.stdout.splitlines())
            if len(parts) == 3 and parts[:2] == ["table", "inet"] and parts[2].startswith(HOLD_PREFIX)]


def hold_table(root: int) -> str:
    return f"{HOLD_PREFIX}{root}"


def take(table: str, ports: Collection[int]) -> str:
    """The lock `table` on `ports` made (replacing one of that name); "" or what went wrong."""
    return _run(f"add table inet {table}\ndelete table inet {table}\n" + _ruleset(table, ports))


def drop(table: str) -> bool:
    """The lock `table` taken out (if there); whether it is gone."""
    if not _run(f"add table inet {table}\ndelete table inet {table}\n"):
        return True
    drop_netlock(table)
    return not netlock_exists(table)


def _ruleset(table: str, ports: Collection[int]) -> str:
    """The table: a drop rule in each direction for packets from or to one of `ports`."""
    ports_set = ", ".join(str(p) for p in sorted(ports))
    rules = (f"meta l4proto {{ tcp, udp }} th sport {{ {ports_set} }} drop; "
             f"meta l4proto {{ tcp, udp }} th dport {{ {ports_set} }} drop;")
    return (f"table inet {table} {{\n"
            f"  chain out {{ type filter hook output priority -300; policy accept; {rules} }}\n"
            f"  chain in {{ type filter hook input priority -300; policy accept; {rules} }}\n"
            "}\n")


@contextmanager
def locked(ports: Collection[int], journal: Journal, pid: int) -> Iterator[None]:
    """No packet from or to `ports` for the time of the block.  `journal`, `pid`: where the lock
    is noted while it exists (the job's root)."""
    if not ports:
        yield
        return
    table = f"{TABLE_PREFIX}{os.getpid()}"
    note = Leftover(pid, "netlock", 0, what=table)
    journal.note(note)
    made = False
    try:
        failed = _run(_ruleset(table, ports))
        if failed:
            raise EngineError(f"cannot lock the network of PID {pid} while its sockets are read: {failed}")
        made = True
        yield
    finally:
        gone = not made or not _run(f"delete table inet {table}\n")
        if not gone:
            drop_netlock(table)
            gone = not netlock_exists(table)
        if gone:
            journal.clear(note)             # else the next command on the job takes it out

