"""Memory-descriptor fields: code/data/brk/stack/arg/env boundaries, auxv, exe.

brk comes from an injected brk(0) (/proc does not show the current break);
restore sets everything at once with prctl(PR_SET_MM, PR_SET_MM_MAP).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Collection

from incr.proto import image_pb2

from . import ghost, proc
from .errors import RestoreError, Unsupported
from .files import check_unchanged, file_id
from .remote import RemoteProcess
from .shm import ShmInstaller
from .tracee import Tracee

PR_SET_MM, PR_SET_MM_MAP = 35, 14
NO_EXE_CHANGE = 0xFFFFFFFF           # prctl_mm_map.exe_fd meaning "keep the current exe"
_MM_MAP = struct.Struct("<11QQII")       # struct prctl_mm_map
_STAT_FIELDS = {"start_code": 26, "end_code": 27, "start_stack": 28, "start_data": 45, "end_data": 46,
                "start_brk": 47, "arg_start": 48, "arg_end": 49, "env_start": 50, "env_end": 51}


def dump(tracee: Tracee, stat: proc.Stat) -> image_pb2.MmImage:
    pid = tracee.pid
    mm = image_pb2.MmImage()
    for name, n in _STAT_FIELDS.items():
        setattr(mm, name, stat[n])
    mm.brk = tracee.call("brk", 0)
    mm.auxv = proc.auxv(pid)
    mm.exe = proc.readlink(pid, "exe")
    st = os.stat(f"/proc/{pid}/exe")
    mm.exe_id.CopyFrom(file_id(st))
    if mm.exe.endswith(ghost.DELETED):
        obj = ghost.classify(f"{st.st_dev}:{st.st_ino}", mm.exe, st)
        if obj is None:
            raise Unsupported(pid, f"executable {mm.exe}", "the executable was replaced, and its file is linked "
                                                           "elsewhere")
        mm.exe = obj.name
        mm.exe_shm = obj.key          # its contents come with its mappings' (memory.dump_vmas)
    return mm


def preflight(mm: image_pb2.MmImage, shared: Collection[str] = ()) -> None:
    """`shared`: the keys of the tree's shared objects (a deleted executable must be one)."""
    if not mm.exe_shm:
        check_unchanged(mm.exe, mm.exe_id, "the job's executable")
    elif mm.exe_shm not in shared:
        raise RestoreError(f"cannot restore: the deleted executable {mm.exe} is not in the checkpoint")


def restore(target: RemoteProcess, mm: image_pb2.MmImage, shared: ShmInstaller | None = None) -> None:
    """`shared`: where a deleted executable was made again (with its mappings)."""
    current = os.stat(f"/proc/{target.pid}/exe")
    path = shared.path_of(mm.exe_shm) if mm.exe_shm and shared is not None else mm.exe
    if path is None:
        raise RestoreError(f"cannot restore the deleted executable {mm.exe}: it was not made again")
    if not mm.exe_shm and (current.st_dev, current.st_ino) == (mm.exe_id.dev, mm.exe_id.ino):
        # Already the right exe (a Python job restored by incr, itself Python);
        # the kernel refuses to swap in a file while the old one is mapped.
        exe_fd = NO_EXE_CHANGE
    else:
        exe_fd = target.call("openat", -100, target.put(os.fsencode(path) + b"\0"), os.O_RDONLY | os.O_CLOEXEC, 0)
    try:
        auxv_at = target.put(mm.auxv)
        raw = _MM_MAP.pack(mm.start_code, mm.end_code, mm.start_data, mm.end_data, mm.start_brk, mm.brk,
                           mm.start_stack, mm.arg_start, mm.arg_end, mm.env_start, mm.env_end,
                           auxv_at, len(mm.auxv), exe_fd)
        target.call("prctl", PR_SET_MM, PR_SET_MM_MAP, target.put(raw), _MM_MAP.size, 0)
    finally:
        if exe_fd != NO_EXE_CHANGE:
            target.call("close", exe_fd)
