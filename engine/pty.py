"""Pseudo-terminals the job made (posix_openpt: a master of /dev/ptmx and its slave /dev/pts/N,
what `script`, `expect` and terminal multiplexers hold), and /dev/tty opened on one.  Dump and
restore.

Dump: a pty is the job's when a process of the job holds its master; its index (TIOCGPTN), the
slave's termios (TCGETS2 on the master reads the slave's), window size, lock and packet mode,
and the session whose controlling terminal it is with that session's foreground process group
(TIOCGSID, TIOCGPGRP).  Refused: bytes waiting in either direction (a line discipline cannot be
read without consuming what it holds), a slave or /dev/tty whose master is outside the job (fd
0-2 of the launcher's terminal are its stdio, as ever).  Not seen: a line typed into the slave in
canonical mode and not yet ended by a newline while its echo was already read from the master.

Restore, before any descriptor table: each master opened again at its index (/dev/ptmx hands out
the lowest free index, so the ones below are opened and let go; a taken index refuses the
restore before anything is made), its termios, window size (no session yet: no SIGWINCH), packet
mode and lock set again; the session leader then makes it its controlling terminal (TIOCSCTTY)
and sets the foreground group.  Slaves and /dev/tty are reopened with O_NOCTTY: by path, or a
slave opened through its master (openpty's TIOCGPTPEER: no O_LARGEFILE) through it again.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from collections.abc import Iterable, Mapping

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import RestoreError, Unsupported
from .pipes import stolen
from .remote import RemoteProcess

PTMX = os.makedev(5, 2)
DEV_TTY = os.makedev(5, 0)
PTS_MAJORS = range(136, 144)
TCGETS2, TCSETS2 = 0x802C542A, 0x402C542B
TERMIOS2 = 44
TIOCGWINSZ, TIOCSWINSZ = 0x5413, 0x5414
TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK = 0x80045430, 0x40045431, 0x80045439
TIOCPKT, TIOCGPKT = 0x5420, 0x80045438
TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID = 0x540E, 0x540F, 0x5410, 0x5429
FIONREAD = 0x541B
TIOCGPTPEER = 0x5441
O_LARGEFILE = 0o100000
AT_FDCWD = -100
_INT = struct.Struct("<i")


def is_master(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == PTMX


def is_dev_tty(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == DEV_TTY


def slave_index(link: str, rdev: int) -> int | None:
    """The index of a slave of /dev/pts (None: not one)."""
    if not link.startswith("/dev/pts/") or os.major(rdev) not in PTS_MAJORS:
        return None
    return (os.major(rdev) - PTS_MAJORS.start) * 256 + os.minor(rdev)


def device(index: int) -> int:
    """The device number of slave `index` (as /proc/PID/stat's tty_nr says it)."""
    return os.makedev(PTS_MAJORS.start + index // 256, index % 256)


def _get_int(fd: int, request: int) -> int:
    return int(_INT.unpack(fcntl.ioctl(fd, request, bytes(4)))[0])


def master_index(pid: int, fd: int) -> int:
    with stolen(pid, fd) as mine:
        return _get_int(mine, TIOCGPTN)


def _queued(fd: int) -> int:
    return _get_int(fd, FIONREAD)


def _queued_bytes(pid: int, what: str, waiting: str) -> Unsupported:
    return Unsupported(pid, what, f"{waiting} (a line discipline cannot be read without consuming them); a "
                       "checkpoint once they are read is supported")


def check_slave(pid: int, fd: int, what: str) -> None:
    """Refuses a slave with bytes typed into it that wait to be read."""
    with stolen(pid, fd) as mine:
        waiting = _queued(mine)
    if waiting:
        raise _queued_bytes(pid, what, f"{waiting} bytes written to the terminal wait to be read from it")


def capture(index: int, holder: tuple[int, int], what: str, job: Mapping[int, int],
            groups: Mapping[int, int]) -> image_pb2.PtyImage:
    """The state of pty `index` through its master at (pid, fd) `holder` (the job frozen).  `job`:
    each process of the job as incr sees it -> as the job does; `groups`: the same for process groups."""
    pid, fd = holder
    with stolen(pid, fd) as m:
        waiting = _queued(m)
        if waiting:
            raise _queued_bytes(pid, what, f"{waiting} bytes the terminal's programs wrote wait to be read from its "
                                "master")
        image = image_pb2.PtyImage(index=index, termios=fcntl.ioctl(m, TCGETS2, bytes(TERMIOS2)),
                                   winsize=fcntl.ioctl(m, TIOCGWINSZ, bytes(8)),
                                   locked=bool(_get_int(m, TIOCGPTLCK)), packet=bool(_get_int(m, TIOCGPKT)))
        try:
            session = _get_int(m, TIOCGSID)
        except OSError:
            return image                          # no session has it as its controlling terminal
        foreground = _get_int(m, TIOCGPGRP)
    if session not in job:
        raise Unsupported(pid, what, f"the terminal /dev/pts/{index} is the controlling terminal of session "
                          f"{session}, outside the job: not supported")
    if foreground not in groups:
        raise Unsupported(pid, what, f"the foreground process group {foreground} of the terminal /dev/pts/{index} "
                          "has no process of the job: not supported")
    image.session, image.foreground = job[session], groups[foreground]
    return image


def needs_version_6(image: image_pb2.TreeImage) -> bool:
    return bool(image.ptys)


# -- restore ------------------------------------------------------------------------------------


def preflight(ptys: Iterable[image_pb2.PtyImage]) -> None:
    for p in ptys:
        if os.path.exists(f"/dev/pts/{p.index}"):
            raise RestoreError(f"cannot restore: the job's terminal /dev/pts/{p.index} is in use now (a pty of that "
                               "index exists); end what holds it (the job, or a copy of it, still running?), then "
                               "restore")


def open_master(target: RemoteProcess, pty: image_pb2.PtyImage, flags: int) -> int:
    """The master of `pty` opened in `target` at the same index, set up as it was; its descriptor."""
    taken: list[int] = []
    try:
        while True:
            fd = target.call("openat", AT_FDCWD, target.put(b"/dev/ptmx\0"), flags | os.O_NOCTTY, 0)
            at = target.put(bytes(4))
            target.call("ioctl", fd, TIOCGPTN, at)
            buf = bytearray(4)
            pt.vm_read_into(target.pid, [(at, 4)], buf)
            got = _INT.unpack(buf)[0]
            if got == pty.index:
                break
            taken.append(fd)
            if got > pty.index:
                raise RestoreError(f"cannot restore the job's terminal /dev/pts/{pty.index}: that index was taken "
                                   "meanwhile")
    finally:
        for other in taken:
            target.call("close", other)
    target.call("ioctl", fd, TCSETS2, target.put(pty.termios))
    target.call("ioctl", fd, TIOCSWINSZ, target.put(pty.winsize))
    if pty.packet:
        target.call("ioctl", fd, TIOCPKT, target.put(_INT.pack(1)))
    if not pty.locked:
        target.call("ioctl", fd, TIOCSPTLCK, target.put(_INT.pack(0)))
    return fd


def open_peer(target: RemoteProcess, master: int, flags: int) -> int:
    """The slave of the master at `master` in `target`, opened through it (TIOCGPTPEER), as openpty(3)
    does: its status flags then lack O_LARGEFILE, which open(2) adds."""
    return target.call("ioctl", master, TIOCGPTPEER, flags | os.O_NOCTTY)


def make_controlling(leader: RemoteProcess, pty: image_pb2.PtyImage) -> None:
    """`pty` the controlling terminal of `leader`'s session again, with its foreground group."""
    fd = leader.call("openat", AT_FDCWD, leader.put(f"/dev/pts/{pty.index}".encode() + b"\0"),
                     os.O_RDWR | os.O_NOCTTY, 0)
    try:
        leader.call("ioctl", fd, TIOCSCTTY, 0)
        leader.call("ioctl", fd, TIOCSPGRP, leader.put(_INT.pack(pty.foreground)))
    finally:
        leader.call("close", fd)
