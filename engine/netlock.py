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
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from .errors import EngineError
from .leftovers import Journal, Leftover, drop_netlock, nft

TABLE_PREFIX = "incr_lock_"


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
    cmd = nft()
    if cmd is None:
        raise EngineError(f"cannot lock the network of PID {pid} while its sockets are read: nftables is not "
                          "installed (apt-get install nftables)")
    table = f"{TABLE_PREFIX}{os.getpid()}"
    note = Leftover(pid, "netlock", 0, what=table)
    journal.note(note)
    try:
        res = subprocess.run([cmd, "-f", "-"], input=_ruleset(table, ports), capture_output=True, text=True,
                             check=False)
        if res.returncode != 0:
            raise EngineError(f"cannot lock the network of PID {pid} (nft: {res.stderr.strip()})")
        yield
    finally:
        drop_netlock(table)
        journal.clear(note)
