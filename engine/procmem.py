"""/proc/PID/mem: reads and writes that reach what process_vm_readv/writev cannot
(PROT_NONE and read-only pages, [vdso])."""

from __future__ import annotations

import os

from .errors import EngineError


def write_proc_mem(pid: int, addr: int, data: bytes) -> None:
    """Write through /proc/PID/mem, which (unlike process_vm_writev) reaches read-only pages."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)
    try:
        os.pwrite(fd, data, addr)
    finally:
        os.close(fd)


def read_proc_mem(pid: int, addr: int, size: int) -> bytes:
    out = bytearray(size)
    read_proc_mem_into(pid, [(addr, size)], memoryview(out))
    return bytes(out)


def read_proc_mem_into(pid: int, ranges: list[tuple[int, int]], out: memoryview) -> None:
    """Read through /proc/PID/mem, which (unlike process_vm_readv) reaches PROT_NONE pages."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pos = 0
        for addr, length in ranges:
            got = os.preadv(fd, [out[pos:pos + length]], addr)
            if got != length:
                raise EngineError(f"PID {pid}: short read of {length} bytes at {addr:#x}")
            pos += length
    finally:
        os.close(fd)
