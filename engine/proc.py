"""Parsing of /proc/PID files.  Pure readers: nothing here stops or changes a process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ProcessNotFound

PF_KTHREAD = 0x00200000


def _read(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}", encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None


def read_text(pid: int, name: str) -> str:
    return _read(pid, name)


def exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


@dataclass
class MapsEntry:
    start: int
    end: int
    perms: str            # e.g. "rw-p"
    offset: int
    dev: tuple[int, int]
    inode: int
    path: str             # "" for anonymous; "[heap]", "[stack]", "[vdso]", ...; " (deleted)" kept

    @property
    def shared(self) -> bool:
        return self.perms[3] == "s"

    @property
    def is_file(self) -> bool:
        return self.inode != 0 or self.path.startswith("/")

    @property
    def size(self) -> int:
        return self.end - self.start


def maps(pid: int) -> list[MapsEntry]:
    entries = []
    for line in _read(pid, "maps").splitlines():
        parts = line.split(maxsplit=5)
        lo, hi = parts[0].split("-")
        major, minor = parts[3].split(":")
        entries.append(MapsEntry(
            start=int(lo, 16), end=int(hi, 16), perms=parts[1], offset=int(parts[2], 16),
            dev=(int(major, 16), int(minor, 16)), inode=int(parts[4]),
            path=parts[5] if len(parts) > 5 else "",
        ))
    return entries


VmFlags = dict[tuple[int, int], frozenset[str]]       # (start, end) of a mapping -> its VmFlags mnemonics


def vm_flags(pid: int) -> VmFlags:
    """The VmFlags mnemonics of every mapping in /proc/PID/smaps ("rd", "wr", "lo", ...), by range.

    Only each entry's first line (its range) and last (VmFlags) are looked at:
    the text is split at the VmFlags lines, so that the cost stays one pass
    over the file with ten thousand mappings (the kernel's page walk behind
    smaps is the larger part: about 10 ms per GiB of resident 4 KiB pages here).
    """
    try:
        with open(f"/proc/{pid}/smaps", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None
    out: VmFlags = {}
    pieces = raw.split(b"\nVmFlags:")
    header = pieces[0]                          # the first entry's lines, up to its VmFlags
    for piece in pieces[1:]:
        flags, _, rest = piece.partition(b"\n")
        lo, _, hi = header[:header.index(b" ")].partition(b"-")
        out[(int(lo, 16), int(hi, 16))] = frozenset(flags.decode("ascii").split())
        header = rest
    return out


@dataclass
class Stat:
    """/proc/PID/stat, fields numbered as in proc(5) (1-based)."""

    pid: int
    comm: str
    state: str
    fields: dict[int, int] = field(default_factory=dict)

    def __getitem__(self, n: int) -> int:
        return self.fields[n]

    @property
    def ppid(self) -> int:
        return self.fields[4]

    @property
    def pgid(self) -> int:
        return self.fields[5]

    @property
    def sid(self) -> int:
        return self.fields[6]

    @property
    def flags(self) -> int:
        return self.fields[9]

    @property
    def num_threads(self) -> int:
        return self.fields[20]


def stat(pid: int) -> Stat:
    return _parse_stat(_read(pid, "stat"))


def stat_of_task(pid: int, tid: int) -> Stat:
    """/proc/PID/task/TID/stat: one thread's."""
    return _parse_stat(_read(pid, f"task/{tid}/stat"))


def _parse_stat(raw: str) -> Stat:
    lpar, rpar = raw.index("("), raw.rindex(")")
    rest = raw[rpar + 2:].split()
    fields = {}
    for i, tok in enumerate(rest[1:], start=4):
        fields[i] = int(tok)
    return Stat(pid=int(raw[:lpar]), comm=raw[lpar + 1:rpar], state=rest[0], fields=fields)


def status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _read(pid, "status").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def tasks(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None


def children(pid: int) -> list[int]:
    kids: list[int] = []
    for tid in tasks(pid):
        try:
            kids.extend(int(c) for c in _read(pid, f"task/{tid}/children").split())
        except ProcessNotFound:
            continue
    return sorted(kids)


def ns_ids(pid: int) -> tuple[int, int, int]:
    """(pid, pgid, sid) of process `pid` as its own, innermost PID namespace sees them (0: outside it)."""
    st = status(pid)
    return int(st["NSpid"].split()[-1]), int(st["NSpgid"].split()[-1]), int(st["NSsid"].split()[-1])


def nested_pidns(pid: int) -> bool:
    """Whether `pid` runs in a PID namespace below the one incr runs in."""
    return len(status(pid)["NSpid"].split()) > len(status(os.getpid())["NSpid"].split())


def host_child(parent: int, inner_pid: int) -> int:
    """The PID here of the child of `parent` whose PID in its own namespace is `inner_pid`."""
    for kid in children(parent):
        if ns_ids(kid)[0] == inner_pid:
            return kid
    raise ProcessNotFound(inner_pid)


def host_task(pid: int, inner_tid: int) -> int:
    """The TID here of the thread of `pid` whose TID in its own namespace is `inner_tid`."""
    for tid in tasks(pid):
        if ns_ids(tid)[0] == inner_tid:     # /proc/TID works for any thread
            return tid
    raise ProcessNotFound(inner_tid)


def auxv(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def readlink(pid: int, name: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/{name}")
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None


def fds(pid: int) -> list[int]:
    try:
        return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessNotFound(pid) from None


def fdinfo(pid: int, fd: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _read(pid, f"fdinfo/{fd}").splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key, value.strip())
    return out


def fdinfo_lines(pid: int, fd: int) -> list[str]:
    """/proc/PID/fdinfo/FD line by line (epoll and inotify list one watch per line)."""
    return _read(pid, f"fdinfo/{fd}").splitlines()


def timers(pid: int) -> str:
    return _read(pid, "timers")


def boot_id() -> str:
    """This boot's random id: start times (stat field 22) compare only within one boot."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def is_kernel_thread(pid: int) -> bool:
    return bool(stat(pid).flags & PF_KTHREAD)


def describe(pid: int) -> str:
    """'PID 123 (comm)' for messages; tolerant of a process that just exited."""
    try:
        return f"PID {pid} ({stat(pid).comm})"
    except ProcessNotFound:
        return f"PID {pid}"
