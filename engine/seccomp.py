"""seccomp filters (SECCOMP_MODE_FILTER).  Dump and restore.

Dump, each thread ptrace-stopped: its chain of filters, newest first, read with
PTRACE_SECCOMP_GET_FILTER (the classic BPF program of each, as installed) and
PTRACE_GET_SECCOMP_METADATA (its flags: SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW), recorded
oldest first.  Every thread of a process must run under the same chain (a thread that added a
filter of its own is refused), and strict mode (SECCOMP_MODE_STRICT) is refused: nothing could be
restored after it.

Restore: the filters are installed again, oldest first, with seccomp(SECCOMP_SET_MODE_FILTER)
and SECCOMP_FILTER_FLAG_TSYNC when the process has several threads (they have none of their own
yet), as late as can be: after the ids and no_new_privs are the job's (installing needs
no_new_privs or CAP_SYS_ADMIN, as it did for the job) and every other injected call but the
one unmapping the injection area, which the filter then sees (a filter that refuses munmap
fails the restore, naming it).  A filter that notifies a listener (SECCOMP_RET_USER_NOTIF)
needs its descriptor, which the files refuse.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from incr.proto import image_pb2

from .errors import EngineError, RemoteSyscallFailed, RestoreError, Unsupported
from .remote import RemoteProcess

PTRACE_SECCOMP_GET_FILTER, PTRACE_GET_SECCOMP_METADATA = 0x420C, 0x420D
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SYS_PTRACE = 101
SOCK_FILTER_SIZE = 8                 # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
_METADATA = struct.Struct("<QQ")      # struct seccomp_metadata: filter_off, flags

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _ptrace(request: int, tid: int, addr: int, data: int | ctypes.Array[ctypes.c_char] | None) -> int:
    ret = _libc.syscall(ctypes.c_long(SYS_PTRACE), ctypes.c_long(request), ctypes.c_long(tid),
                        ctypes.c_void_p(addr), data if isinstance(data, ctypes.Array) else ctypes.c_void_p(data))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def check_mode(pid: int, status: dict[str, str]) -> None:
    """What can be refused before the freeze: strict mode."""
    if status.get("Seccomp", "0") == "1":
        raise Unsupported(pid, "seccomp strict mode", "a process in SECCOMP_MODE_STRICT can make no call but read, "
                          "write and exit, so nothing could restore it; not supported")


def _chain(pid: int, tid: int) -> list[image_pb2.SeccompFilter]:
    """The filters thread `tid` (ptrace-stopped) runs under, oldest first."""
    out = []
    index = 0
    while True:
        try:
            count = _ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, None)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                break
            raise Unsupported(pid, "seccomp filter", f"its filters cannot be read back (PTRACE_SECCOMP_GET_FILTER: "
                              f"{exc.strerror}; it needs CAP_SYS_ADMIN and a kernel with "
                              "CONFIG_CHECKPOINT_RESTORE)") from None
        buf = ctypes.create_string_buffer(count * SOCK_FILTER_SIZE)
        _ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, buf)
        meta = ctypes.create_string_buffer(_METADATA.pack(index, 0), _METADATA.size)
        _ptrace(PTRACE_GET_SECCOMP_METADATA, tid, _METADATA.size, meta)
        out.append(image_pb2.SeccompFilter(program=buf.raw, flags=_METADATA.unpack(meta.raw)[1]))
        index += 1
    out.reverse()
    return out


def dump(pid: int, tids: list[int], status: dict[str, str]) -> list[image_pb2.SeccompFilter]:
    """The process's filters, oldest first (every thread frozen); [] without any."""
    check_mode(pid, status)
    if status.get("Seccomp", "0") == "0":
        return []
    chains = {tid: _chain(pid, tid) for tid in tids}
    leader = chains[pid] if pid in chains else next(iter(chains.values()))
    for tid, chain in chains.items():
        if chain != leader:
            raise Unsupported(pid, "seccomp filter", f"its thread {tid} runs under seccomp filters of its own "
                              "(not the process's); not supported")
    return leader


def restore(target: RemoteProcess, filters: list[image_pb2.SeccompFilter], threaded: bool) -> None:
    """The filters installed again, oldest first, in every thread (TSYNC when `threaded`)."""
    for f in filters:
        program = target.put(f.program)
        fprog = target.put(struct.pack("<H6xQ", len(f.program) // SOCK_FILTER_SIZE, program))
        flags = f.flags | (SECCOMP_FILTER_FLAG_TSYNC if threaded else 0)
        try:
            ret = target.call("seccomp", SECCOMP_SET_MODE_FILTER, flags, fprog)
        except RemoteSyscallFailed as exc:
            raise RestoreError(f"cannot restore the seccomp filters of PID {getattr(target, 'vpid', '?')}: "
                               f"seccomp(SECCOMP_SET_MODE_FILTER) failed ({exc}); the job had no_new_privs or "
                               "CAP_SYS_ADMIN when it installed them") from None
        if ret:
            raise RestoreError(f"cannot restore the seccomp filters of PID {getattr(target, 'vpid', '?')}: its "
                               f"thread {ret} could not take them (TSYNC)")


def check_unmapped(target: RemoteProcess, filters: list[image_pb2.SeccompFilter], exc: EngineError) -> EngineError:
    """The error to raise when the last injected call (munmap) failed under the restored filters."""
    if not filters:
        return exc
    return RestoreError(f"cannot restore PID {getattr(target, 'vpid', '?')}: its seccomp filter refuses the munmap "
                        f"that ends the restore ({exc})")
