"""Linux AIO contexts (io_setup): a ring the kernel maps into the process, whose address is the
context's id.  Dump and restore.

Dump: the ring's capacity, head and tail, from its header, and the completed events not yet
read (io_getevents), slot by slot.  Requests submitted and still in flight cannot be seen from
outside: they must have completed (a job checkpointed mid-request would lose its completion; what
CRIU assumes too).  Restore: an injected io_setup with a request count that gives a ring of that
capacity, and mremap of the ring to its old address, which the kernel follows (the context's id is
the address again).  Unread events: the kernel keeps its own tail and count of them, which only
real completions move; so the restore completes reads of nothing from /dev/null (which complete at
once) until the ring's head and tail are where they were, reaping those before the head, then
writes the saved events into their slots.
"""

from __future__ import annotations

import os
import struct

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import RestoreError, Unsupported
from .procmem import read_proc_mem
from .remote import RemoteProcess

PATH = "/[aio] (deleted)"
_RING = struct.Struct("<IIIIIIII")      # struct aio_ring: id, nr, head, tail, magic, compat, incompat, header_length
EVENT = 32                              # struct io_event: data, obj, res, res2
_IOCB = struct.Struct("<QIIHhIQQqQII")  # struct iocb: data, key, rw_flags, opcode, reqprio, fildes, buf, nbytes...
IOCB_CMD_PREAD = 0
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
AT_FDCWD = -100
BATCH = 64                              # dummy requests per io_submit


def dump(pid: int, vma: image_pb2.Vma, where: str) -> None:
    """`vma`, the ring of an AIO context of `pid`, recorded as one, with its unread events."""
    _id, nr, head, tail, _magic, _compat, _incompat, header = _RING.unpack(read_proc_mem(pid, vma.start, _RING.size))
    if not nr or head >= nr or tail >= nr or header != _RING.size:
        raise Unsupported(pid, where, f"the AIO ring's header is not one incr knows (nr {nr}, head {head}, tail "
                                      f"{tail}, header {header} bytes)")
    vma.kind = image_pb2.Vma.AIO
    vma.name = PATH
    vma.aio_nr = nr
    if head != tail:
        vma.aio_head, vma.aio_tail = head, tail
        vma.aio_events = b"".join(read_proc_mem(pid, vma.start + header + EVENT * a, EVENT * (b - a))
                                  for a, b in _slots(nr, head, tail))


def needs_version_6(image: image_pb2.TreeImage) -> bool:
    return any(v.aio_head != v.aio_tail for p in image.processes for v in p.vmas)


def _slots(nr: int, head: int, tail: int) -> list[tuple[int, int]]:
    """The ring's slots from head to tail, as at most two runs [a, b)."""
    return [(head, tail)] if head <= tail else [(head, nr), (0, tail)]


def restore(stub: RemoteProcess, vma: image_pb2.Vma) -> None:
    """The AIO context of `vma` again, its ring at the same address."""
    at = stub.put(bytes(8))
    # The kernel doubles the count asked for and adds 2 before rounding the ring up to whole pages.
    stub.call("io_setup", max((vma.aio_nr - 2) // 2, 1), at)
    buf = bytearray(8)
    pt.vm_read_into(stub.pid, [(at, 8)], buf)
    ring = struct.unpack("<Q", buf)[0]
    size = vma.end - vma.start
    if ring != vma.start:
        got = stub.call("mremap", ring, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, vma.start)
        if got != vma.start:
            raise RestoreError(f"cannot move the AIO ring of PID {stub.vpid} to {vma.start:#x}: placed at {got:#x}")
    _id, nr, _head, _tail, *_ = _RING.unpack(read_proc_mem(stub.pid, vma.start, _RING.size))
    if nr != vma.aio_nr:
        raise RestoreError(f"cannot restore the AIO context at {vma.start:#x} of PID {stub.vpid}: its ring holds "
                           f"{nr} events here, {vma.aio_nr} at the checkpoint")
    if vma.aio_head != vma.aio_tail:
        _unread(stub, vma)


def _unread(stub: RemoteProcess, vma: image_pb2.Vma) -> None:
    """The ring's unread events again: head and tail moved by completions, then the saved events."""
    null = stub.call("openat", AT_FDCWD, stub.put(b"/dev/null\0"), os.O_RDONLY, 0)
    try:
        _complete(stub, vma.start, null, vma.aio_head, reap=True)
        _complete(stub, vma.start, null, (vma.aio_tail - vma.aio_head) % vma.aio_nr, reap=False)
    finally:
        stub.call("close", null)
    _id, _nr, head, tail, *_ = _RING.unpack(read_proc_mem(stub.pid, vma.start, _RING.size))
    if (head, tail) != (vma.aio_head, vma.aio_tail):
        raise RestoreError(f"cannot restore the AIO context at {vma.start:#x} of PID {stub.vpid}: its ring's head "
                           f"and tail came to {head} and {tail}, not {vma.aio_head} and {vma.aio_tail}")
    at = 0
    for a, b in _slots(vma.aio_nr, head, tail):
        size = EVENT * (b - a)
        pt.vm_write(stub.pid, [(vma.start + _RING.size + EVENT * a, size)], vma.aio_events[at:at + size])
        at += size


def _complete(stub: RemoteProcess, ctx: int, fd: int, count: int, *, reap: bool) -> None:
    """`count` reads of nothing from `fd` through context `ctx`, each completed at once; their
    events reaped when `reap`."""
    done = 0
    while done < count:
        n = min(count - done, BATCH)
        iocbs = stub.put(b"".join(_IOCB.pack(0, 0, 0, IOCB_CMD_PREAD, 0, fd, 0, 0, 0, 0, 0, 0) for _ in range(n)))
        pointers = stub.put(struct.pack(f"<{n}Q", *(iocbs + i * _IOCB.size for i in range(n))))
        submitted = stub.call("io_submit", ctx, n, pointers)
        if submitted != n:
            raise RestoreError(f"cannot restore the AIO context at {ctx:#x} of PID {stub.vpid}: io_submit took "
                               f"{submitted} of {n} requests")
        if reap:
            events = stub.put(bytes(EVENT * n))
            got = stub.call("io_getevents", ctx, n, n, events, 0)
            if got != n:
                raise RestoreError(f"cannot restore the AIO context at {ctx:#x} of PID {stub.vpid}: io_getevents "
                                   f"reaped {got} of {n} events")
        done += n
