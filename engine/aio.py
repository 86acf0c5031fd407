"""Linux AIO contexts (io_setup): a ring the kernel maps into the process, whose address is the
context's id.  Dump and restore.

Dump: the ring's capacity, from its header; a ring holding completed events not yet read
(io_getevents) is refused, since the kernel's own count of them cannot be set again.  Requests
submitted and still in flight cannot be seen from outside: they must have completed (a job
checkpointed mid-request would lose its completion; what CRIU assumes too).  Restore: an injected
io_setup with a request count that gives a ring of that capacity, and mremap of the ring to its
old address, which the kernel follows (the context's id is the address again).
"""

from __future__ import annotations

import struct

from incr.proto import image_pb2

from . import ptrace as pt
from .errors import RestoreError, Unsupported
from .procmem import read_proc_mem
from .remote import RemoteProcess

PATH = "/[aio] (deleted)"
_RING = struct.Struct("<IIII")          # struct aio_ring: id, nr, head, tail (magic... follow)
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2


def dump(pid: int, vma: image_pb2.Vma, where: str) -> None:
    """`vma`, the ring of an AIO context of `pid`, recorded as one."""
    _id, nr, head, tail = _RING.unpack(read_proc_mem(pid, vma.start, _RING.size))
    if head != tail:
        pending = (tail - head) % nr if nr else tail - head
        raise Unsupported(pid, where, f"the AIO context holds {pending} completed events not yet read "
                                      "(io_getevents); a checkpoint between requests is supported")
    vma.kind = image_pb2.Vma.AIO
    vma.name = PATH
    vma.aio_nr = nr


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
    _id, nr, _head, _tail = _RING.unpack(read_proc_mem(stub.pid, vma.start, _RING.size))
    if nr != vma.aio_nr:
        raise RestoreError(f"cannot restore the AIO context at {vma.start:#x} of PID {stub.vpid}: its ring holds "
                           f"{nr} events here, {vma.aio_nr} at the checkpoint")
