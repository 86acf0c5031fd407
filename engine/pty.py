"""Pseudo-terminals the job made (posix_openpt: a master of /dev/ptmx and its slave /dev/pts/N,
what `script`, `expect` and terminal multiplexers hold), and /dev/tty opened on one.  Dump and
restore.

Dump: a pty is the job's when a process of the job holds its master; its index (TIOCGPTN), the
slave's termios (TCGETS2 on the master reads the slave's), window size, lock and packet mode,
and the session whose controlling terminal it is with that session's foreground process group
(TIOCGSID, TIOCGPGRP).  What waits in its line disciplines (the job frozen): a line discipline
cannot be read without consuming what it holds, so it is read out and put straight back
(TIOCSTI: into the line discipline itself, in order, with nothing echoed or mapped on the way),
CRIU's way; a SIGKILL of incr between the two loses it (docs/crash-model.md, fault point
`pty-drained`).  The master's queue through the master; the slave's through a slave of incr's
own (TIOCGPTPEER), opened only where a process of the job holds one or the last one was closed
(opening one and closing it would otherwise make the master read EIO): its canonical lines one
read each (an end of file, VEOF, shows as a read that ends in no delimiter), then, canonical
mode switched off for one read, the line begun and not ended.  Whether its output is stopped (a
slave that takes no byte while the master's queue is empty), and how: VSTART starts a terminal
VSTOP stopped, not one tcflow(TCOOFF) stopped, so with IXON on it is tried and VSTOP puts the
stop back (fault point `pty-started`).  In packet mode, the status byte the master has not read
(POLLPRI): read, and made again by the events that set its bits.  Refused: bytes waiting in a
pty in packet mode, or where incr cannot put them back (TIOCSTI needs CAP_SYS_ADMIN); a status
waiting where incr holds no slave to make it with, or in EXTPROC mode; a slave or /dev/tty whose
master is outside the job (fd 0-2 of the launcher's terminal are its stdio, as ever).  Not seen:
what was typed into a slave no process of the job holds and none ever closed, nor whether such a
pty's output is stopped.

Restore, before any descriptor table: each master opened again at its index (/dev/ptmx hands out
the lowest free index, so the ones below are opened and let go; a taken index refuses the
restore before anything is made), its termios, window size (no session yet: no SIGWINCH), packet
mode and lock set again, what waited in it put back as at the dump (a slave closed last: one of
incr's own opened and closed), its output stopped again the same way, its status made again; the
session leader then makes it its controlling terminal
(TIOCSCTTY) and sets the foreground group.  Slaves and /dev/tty are reopened with O_NOCTTY: by path, or a
slave opened through its master (openpty's TIOCGPTPEER: no O_LARGEFILE) through it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import stat
import struct
import termios
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from incr.faults import fault_point
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
TIOCGPTPEER = 0x5441
FIONREAD = 0x541B
TIOCSTI = 0x5412
TIOCPKT_FLUSHREAD, TIOCPKT_FLUSHWRITE, TIOCPKT_STOP, TIOCPKT_START = 1, 2, 4, 8
TIOCPKT_NOSTOP, TIOCPKT_DOSTOP, TIOCPKT_IOCTL = 16, 32, 64
#: What makes a packet-mode master's "flow" (pty_set_termios): IXON with ^S and ^Q as VSTOP and VSTART.
_FLOW_CHARS = {termios.VSTOP: 0o23, termios.VSTART: 0o21}
EXTPROC = 0o200000                            # c_lflag (Python's termios lacks it)
CAP_SYS_ADMIN = 21
O_LARGEFILE = 0o100000
AT_FDCWD = -100
_INT = struct.Struct("<i")
_FLAGS = struct.Struct("<4I")                 # struct termios2: c_iflag, c_oflag, c_cflag, c_lflag, then
_CC = 17                                      # c_line, c_cc[19]
#: What a byte put into a line discipline must not meet on its way in, so that it arrives as it
#: was read: echo, signals, input mapping, the editing characters of canonical mode and the
#: flow-control ones (its line delimiters stay: they end the lines again).  IXON stays (turning it
#: off restarts a stopped terminal), but VSTART and VSTOP are disabled: bytes typed with IXON off
#: may be either.
_NOT_ON_THE_WAY_IN = (
    termios.ICRNL | termios.INLCR | termios.IGNCR | termios.ISTRIP | termios.IUCLC | termios.PARMRK | termios.IXANY,
    termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL | termios.ECHOCTL | termios.ECHOPRT
    | termios.ECHOKE | termios.ISIG)
_EDITING = (termios.VERASE, termios.VKILL, termios.VWERASE, termios.VREPRINT, termios.VLNEXT, termios.VSTART,
            termios.VSTOP)


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


def _queued_bytes(pid: int, what: str, waiting: str, why: str) -> Unsupported:
    return Unsupported(pid, what, f"{waiting} ({why}); a checkpoint once they are read is supported")


def _events(fd: int, want: int = select.POLLIN) -> int:
    """poll(2)'s events on `fd` now.  (A poll that finds nothing to read first lets the terminal's
    pending input reach its line discipline.)"""
    poller = select.poll()
    poller.register(fd, want)
    return sum(ev for _, ev in poller.poll(0))


def _stopped(s: int) -> bool:
    """Whether output to the terminal of slave `s` is stopped, its master's queue being empty: the
    slave then takes no byte only when stopped (pty_write_room)."""
    return not _events(s, select.POLLOUT) & select.POLLOUT


def _ready(fd: int) -> bool:
    """Whether a read of `fd` returns at once."""
    return bool(_events(fd) & select.POLLIN)


def _read_out(fd: int) -> list[bytes]:
    """Every read that returns at once, in order (a canonical slave's: a line each)."""
    reads = []
    while _ready(fd):
        try:
            reads.append(os.read(fd, 65536))
        except BlockingIOError:
            break
    return reads


def can_put_back() -> bool:
    """Whether incr may put bytes into a line discipline (TIOCSTI: CAP_SYS_ADMIN)."""
    with open("/proc/self/status") as f:
        caps = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(caps.split()[1], 16) >> CAP_SYS_ADMIN & 1)


def _put(fd: int, data: bytes) -> None:
    for byte in data:
        fcntl.ioctl(fd, TIOCSTI, bytes((byte,)))


def _with_lflag(raw: bytes, clear: int) -> bytes:
    iflag, oflag, cflag, lflag = _FLAGS.unpack_from(raw)
    return _FLAGS.pack(iflag, oflag, cflag, lflag & ~clear) + raw[_FLAGS.size:]


def _transparent(raw: bytes) -> bytes:
    iflag, oflag, cflag, lflag = _FLAGS.unpack_from(raw)
    out = bytearray(_FLAGS.pack(iflag & ~_NOT_ON_THE_WAY_IN[0], oflag, cflag, lflag & ~_NOT_ON_THE_WAY_IN[1]))
    out += raw[_FLAGS.size:]
    for c in _EDITING:
        out[_CC + c] = 0                      # _POSIX_VDISABLE
    return bytes(out)


def _canonical(raw: bytes) -> bool:
    return bool(_FLAGS.unpack_from(raw)[3] & termios.ICANON)


@dataclass
class Waiting:
    """What waits in a pty's line disciplines (PtyImage.typed, partial, output)."""

    typed: list[bytes] = field(default_factory=list)
    partial: bytes = b""
    output: bytes = b""

    def typed_stream(self, raw: bytes) -> bytes:
        """The bytes that, put into the slave's line discipline under `raw`, make `typed` and `partial` again."""
        if not _canonical(raw):
            return b"".join(self.typed) + self.partial
        cc = raw[_CC:_CC + 19]
        ends = {b"\n"[0], cc[termios.VEOL]} | ({cc[termios.VEOL2]} if _FLAGS.unpack_from(raw)[3] & termios.IEXTEN
                                               else set())
        ends.discard(0)
        eof = bytes((cc[termios.VEOF],))
        return b"".join(r if r and r[-1] in ends else r + eof for r in self.typed) + self.partial


def _read_typed(s: int, raw: bytes, into: Waiting) -> None:
    """What waits to be read from slave `s` (termios `raw`) into `into`: its reads, then the line begun."""
    into.typed = _read_out(s)
    if _canonical(raw):
        # The line begun: readable once canonical mode is off (the queue is empty but for it).
        fcntl.ioctl(s, TCSETS2, _with_lflag(raw, termios.ICANON))
        try:
            into.partial = b"".join(_read_out(s))
        finally:
            fcntl.ioctl(s, TCSETS2, raw)


def put_back(m: int, s: int | None, raw: bytes, waiting: Waiting) -> None:
    """`waiting` into the line disciplines of master `m` and slave `s` (incr's descriptors; the
    slave's termios `raw` in force again after)."""
    _put(m, waiting.output)
    if s is None or not (waiting.typed or waiting.partial):
        return
    fcntl.ioctl(s, TCSETS2, _transparent(raw))
    try:
        _put(s, waiting.typed_stream(raw))
    finally:
        fcntl.ioctl(s, TCSETS2, raw)


@contextlib.contextmanager
def _own_slave(m: int) -> Iterator[int]:
    s = fcntl.ioctl(m, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        yield s
    finally:
        os.close(s)


def _take_waiting(m: int, image: image_pb2.PtyImage, slave_held: bool, pid: int, what: str) -> None:
    """What waits in the pty at master `m`, read into `image` and put straight back; how its output
    flows (image.flow) and, in packet mode, the status its master has not read (image.status)."""
    slave = contextlib.nullcontext(None) if image.locked or not (slave_held or image.slave_closed) \
        else _own_slave(m)
    with slave as s:
        # (In packet mode the master also reads as ready for a status change alone: bytes are counted.)
        output = _get_int(m, FIONREAD) > 0 if image.packet else _ready(m)
        if not (output or (s is not None and _ready(s))):
            if image.packet and _events(m, select.POLLPRI) & select.POLLPRI:
                _take_status(m, s, image, pid, what)
            elif s is not None:
                image.flow = _flow(m, s, image)
            return
        where = f"bytes wait to be read in the terminal /dev/pts/{image.index}"
        if image.packet:
            raise _queued_bytes(pid, what, where, "its master is in packet mode")
        if not can_put_back():
            raise _queued_bytes(pid, what, where, "incr would read them out and cannot put them back: TIOCSTI "
                                "needs CAP_SYS_ADMIN")
        waiting = Waiting()
        try:
            waiting.output = b"".join(_read_out(m))
            if s is not None:
                _read_typed(s, image.termios, waiting)
                image.flow = _flow(m, s, image)           # the master's queue is empty now
            fault_point("pty-drained")
        finally:
            put_back(m, s, image.termios, waiting)
    image.typed.extend(waiting.typed)
    image.partial, image.output = waiting.partial, waiting.output


def _flow(m: int, s: int, image: image_pb2.PtyImage) -> image_pb2.PtyImage.Flow:
    """How output to the terminal of master `m` and slave `s` is stopped, if it is (its master's
    queue empty).  The VSTART character starts a terminal the VSTOP character stopped, not one
    tcflow(TCOOFF) stopped: tried, and stopped again the same way; in packet mode the status that
    made is wiped (enabling packet mode clears it)."""
    if not _stopped(s):
        return image_pb2.PtyImage.RUNNING
    if not _ixon(image.termios) or not can_put_back():
        # (Turning IXON off starts a terminal VSTOP stopped: with IXON off, tcflow stopped it.)
        return image_pb2.PtyImage.TCOOFF
    _start(s, image.termios, image_pb2.PtyImage.XOFF)
    if _stopped(s):
        flow = image_pb2.PtyImage.TCOOFF
    else:
        fault_point("pty-started")
        _halt(s, image.termios, image_pb2.PtyImage.XOFF)
        flow = image_pb2.PtyImage.XOFF
    if image.packet:
        _wipe_status(m)
    return flow


def _wipe_status(m: int) -> None:
    fcntl.ioctl(m, TIOCPKT, _INT.pack(0))
    fcntl.ioctl(m, TIOCPKT, _INT.pack(1))


def _cc(raw: bytes, index: int) -> int:
    return raw[_CC + index]


def _ixon(raw: bytes) -> bool:
    return bool(_FLAGS.unpack_from(raw)[0] & termios.IXON)


def _start(s: int, raw: bytes, way: image_pb2.PtyImage.Flow) -> None:
    """Output to slave `s` (termios `raw`) started the way that undoes a stop of `way`."""
    if way == image_pb2.PtyImage.XOFF:
        _put(s, bytes((_cc(raw, termios.VSTART),)))
    else:
        termios.tcflow(s, termios.TCOON)


def _halt(s: int, raw: bytes, way: image_pb2.PtyImage.Flow) -> None:
    """Output to slave `s` (termios `raw`) stopped `way`: the VSTOP character (XOFF) or tcflow(TCOOFF)."""
    if way == image_pb2.PtyImage.XOFF:
        _put(s, bytes((_cc(raw, termios.VSTOP),)))
    else:
        termios.tcflow(s, termios.TCOOFF)


def _flowing(raw: bytes) -> bool:
    """A packet-mode master's "flow" under the slave's termios `raw` (pty_set_termios)."""
    return _ixon(raw) and all(_cc(raw, c) == v for c, v in _FLOW_CHARS.items())


def _take_status(m: int, s: int | None, image: image_pb2.PtyImage, pid: int, what: str) -> None:
    """The status byte packet-mode master `m` has not read, read into `image` and made again by the
    events that make it (a read consumes it, and nothing sets it directly)."""
    where = f"a status change waits to be read on the master of the terminal /dev/pts/{image.index} (packet mode)"
    if s is None:
        raise Unsupported(pid, what, f"{where} and incr holds no slave of it to make it again; a checkpoint "
                          "once it is read is supported")
    if _FLAGS.unpack_from(image.termios)[3] & EXTPROC:
        raise Unsupported(pid, what, f"{where}, in external processing mode (EXTPROC): not supported")
    image.status = os.read(m, 1)[0]         # a status waiting is what a read returns first, alone
    try:
        fault_point("pty-drained")
        image.flow = _flow(m, s, image)
    finally:
        make_status(m, s, image.termios, image.status, image.flow)
    stopped = image.flow != image_pb2.PtyImage.RUNNING
    if (image.status & TIOCPKT_STOP and not stopped) or (image.status & TIOCPKT_START and stopped) \
            or (image.status & TIOCPKT_NOSTOP and _flowing(image.termios)) \
            or (image.status & TIOCPKT_DOSTOP and not _flowing(image.termios)) or image.status & TIOCPKT_IOCTL:
        raise Unsupported(pid, what, f"{where}: its status {image.status:#x} does not match the terminal's state")


def make_status(m: int, s: int, raw: bytes, status: int, flow: image_pb2.PtyImage.Flow) -> None:
    """Status `status` waiting on packet-mode master `m` again (slave `s`, its termios `raw`, its output
    stopped as `flow` says), made by the events that set each bit (drivers/tty/pty.c, n_tty.c)."""
    if status & TIOCPKT_START and flow == image_pb2.PtyImage.RUNNING:
        _halt(s, raw, image_pb2.PtyImage.TCOOFF)    # a stop, then the start that is the status
        _start(s, raw, image_pb2.PtyImage.TCOOFF)
    elif status & TIOCPKT_STOP and flow != image_pb2.PtyImage.RUNNING:
        _start(s, raw, flow)                        # a start, then the stop that is the status
        _halt(s, raw, flow)
    if status & TIOCPKT_FLUSHREAD:
        termios.tcflush(s, termios.TCIFLUSH)        # the slave's input, empty: packet mode is refused with bytes
    if status & TIOCPKT_FLUSHWRITE:
        termios.tcflush(s, termios.TCOFLUSH)        # the master's input, empty alike
    if status & (TIOCPKT_NOSTOP | TIOCPKT_DOSTOP):
        # The flow changed to what it is: through the other first, and back.
        iflag, oflag, cflag, lflag = _FLAGS.unpack_from(raw)
        other = bytearray(_FLAGS.pack(iflag | termios.IXON, oflag, cflag, lflag) + raw[_FLAGS.size:])
        for c, v in _FLOW_CHARS.items():
            other[_CC + c] = v if status & TIOCPKT_NOSTOP else (v + 1) % 256
        fcntl.ioctl(m, TCSETS2, bytes(other))
        fcntl.ioctl(m, TCSETS2, raw)


def capture(index: int, holder: tuple[int, int], slave_held: bool, what: str, job: Mapping[int, int],
            groups: Mapping[int, int]) -> image_pb2.PtyImage:
    """The state of pty `index` through its master at (pid, fd) `holder` (the job frozen).  `slave_held`:
    whether a process of the job holds its slave; `job`: each process of the job as incr sees it -> as
    the job does; `groups`: the same for process groups."""
    pid, fd = holder
    with stolen(pid, fd) as m:
        image = image_pb2.PtyImage(index=index, termios=fcntl.ioctl(m, TCGETS2, bytes(TERMIOS2)),
                                   winsize=fcntl.ioctl(m, TIOCGWINSZ, bytes(8)),
                                   locked=bool(_get_int(m, TIOCGPTLCK)), packet=bool(_get_int(m, TIOCGPKT)),
                                   slave_closed=bool(_events(m) & select.POLLHUP))
        _take_waiting(m, image, slave_held, pid, what)
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


def needs_version_8(image: image_pb2.TreeImage) -> bool:
    return any(p.typed or p.partial or p.output or p.slave_closed for p in image.ptys)


def needs_version_9(image: image_pb2.TreeImage) -> bool:
    return any(p.flow or p.status for p in image.ptys)


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


def restore_waiting(root_pid: int, master_fd: int, p: image_pb2.PtyImage) -> None:
    """What waited in pty `p` put back, through its master at `master_fd` of process `root_pid` (made by
    open_master); a slave of incr's own opened and closed where the job's last one was closed; its
    output stopped again as it was, and the status its master had not read made again."""
    queued = bool(p.output or p.typed or p.partial)
    if not (queued or p.slave_closed or p.flow or p.status):
        return
    if (queued or p.flow == image_pb2.PtyImage.XOFF or p.status & TIOCPKT_STOP) and not can_put_back():
        raise RestoreError(f"cannot restore the state of the job's terminal /dev/pts/{p.index}: TIOCSTI needs "
                           "CAP_SYS_ADMIN; restore as root")
    with stolen(root_pid, master_fd) as m:
        slave = _own_slave(m) if (p.typed or p.partial or p.slave_closed or p.flow or p.status) and not p.locked \
            else contextlib.nullcontext(None)
        with slave as s:
            put_back(m, s, p.termios, Waiting(list(p.typed), p.partial, p.output))
            if s is None or not (p.flow or p.status):
                return
            if p.flow:
                _stop(s, p)
                if p.packet:
                    _wipe_status(m)         # what the stop made: the image says what waited
            if p.status:
                make_status(m, s, p.termios, p.status, p.flow)


def _stop(s: int, p: image_pb2.PtyImage) -> None:
    """Output to the terminal of slave `s` stopped the way `p.flow` says."""
    if p.flow == image_pb2.PtyImage.XOFF and not _ixon(p.termios):
        raise RestoreError(f"cannot restore the job's terminal /dev/pts/{p.index}: its image says the VSTOP "
                           "character stopped it, with IXON off")
    _halt(s, p.termios, p.flow)
    if not _stopped(s):
        raise RestoreError(f"cannot restore the job's terminal /dev/pts/{p.index}: its output did not stop")
