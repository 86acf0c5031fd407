"""Capabilities of each thread: the effective, permitted, inheritable, ambient and bounding sets
(/proc/PID/task/TID/status) and the securebits (PR_GET_SECUREBITS, injected; SECBIT_KEEP_CAPS is
PR_GET_KEEPCAPS).  All are per thread (they live in the thread's credentials).

Restore runs in each thread of the stub, which holds incr's own capabilities (root's) until then,
around the switch of its user and group ids (creds.py), in the only order the kernel allows:

1. the inheritable set, while the bounding set is still whole (raising an inheritable capability
   needs it in the bounding set, or in the inheritable set already);
2. the bounding set (PR_CAPBSET_DROP needs CAP_SETPCAP);
3. SECBIT_NO_SETUID_FIXUP (and KEEP_CAPS), so that setresuid() from 0 to another uid clears no set;
4. (creds.py) groups, gids, uids;
5. the ambient set (a raise needs the capability permitted and inheritable, and
   SECBIT_NO_CAP_AMBIENT_RAISE not set yet);
6. the dumped securebits (needs CAP_SETPCAP, still effective);
7. the effective and permitted sets, last: from here on the thread holds only the job's.
"""

from __future__ import annotations

import ctypes
import struct

from incr.proto import image_pb2

from .errors import RemoteSyscallFailed, RestoreError, Unsupported
from .remote import RemoteProcess
from .tracee import Tracee

PR_CAPBSET_DROP = 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL = 2, 4
SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS = 1 << 2, 1 << 4
CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 6, 7, 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_HEADER = struct.Struct("<Ii")            # version, pid (0: the calling thread)
_DATA = struct.Struct("<6I")              # two of {effective, permitted, inheritable}, low 32 bits first

_libc = ctypes.CDLL(None, use_errno=True)


def from_status(status: dict[str, str], securebits: int) -> image_pb2.Caps:
    return image_pb2.Caps(effective=int(status["CapEff"], 16), permitted=int(status["CapPrm"], 16),
                          inheritable=int(status["CapInh"], 16), bounding=int(status["CapBnd"], 16),
                          ambient=int(status["CapAmb"], 16), securebits=securebits)


def own() -> image_pb2.Caps:
    """incr's own (its calling thread's): what a restore stub starts with."""
    status: dict[str, str] = {}
    with open("/proc/thread-self/status", encoding="ascii", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return from_status(status, _libc.prctl(PR_GET_SECUREBITS, 0, 0, 0, 0))


def dump_thread(tracee: Tracee, status: dict[str, str]) -> image_pb2.Caps:
    """`status`: the thread's /proc/PID/task/TID/status."""
    return from_status(status, tracee.call("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0))


def check(pid: int, tid: int, caps: image_pb2.Caps, mine: image_pb2.Caps) -> None:
    """Refuses capabilities a restore by this incr (holding `mine`) could not give back."""
    beyond = (caps.permitted & ~mine.permitted) | (caps.bounding & ~mine.bounding) \
        | (caps.inheritable & ~(mine.inheritable | mine.bounding))
    if beyond:
        raise Unsupported(pid, f"thread {tid} capabilities", f"it holds {names(beyond)}, which incr itself lacks "
                          "(a restore could not give them back)")


_NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
    "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
    "checkpoint_restore",
)


def names(mask: int) -> str:
    return ", ".join(f"cap_{_NAMES[n]}" if n < len(_NAMES) else f"capability {n}" for n in bits(mask))


def bits(mask: int) -> list[int]:
    return [n for n in range(64) if mask >> n & 1]


def needs_version_3(caps: image_pb2.Caps, root: bool, mine: image_pb2.Caps) -> bool:
    """Whether a version-2 reader, which gives a thread incr's own capabilities if its uids are
    all 0 and none otherwise (setresuid() clears them), would restore other ones."""
    if caps.ambient or caps.securebits or caps.bounding != mine.bounding or caps.inheritable != mine.inheritable:
        return True
    expected = mine.permitted if root else 0
    return caps.permitted != expected or caps.effective != expected


# ---------------------------------------------------------------- restore

def _capset(target: RemoteProcess, effective: int, permitted: int, inheritable: int) -> None:
    lo, hi = 0xFFFFFFFF, 32
    data = _DATA.pack(effective & lo, permitted & lo, inheritable & lo, effective >> hi, permitted >> hi,
                      inheritable >> hi)
    header = target.put(_HEADER.pack(_LINUX_CAPABILITY_VERSION_3, 0))
    target.call("capset", header, target.put(data))


def _refused(target: RemoteProcess, what: str, exc: RemoteSyscallFailed) -> RestoreError:
    return RestoreError(f"cannot restore PID {target.vpid}: {what}: {exc}")


def prepare(target: RemoteProcess, want: image_pb2.Caps, now: image_pb2.Caps, *, switching_ids: bool) -> None:
    """Steps 1-3, in the thread `target` drives, which holds `now` (incr's); `now` is updated."""
    try:
        if want.inheritable != now.inheritable:
            _capset(target, now.effective, now.permitted, want.inheritable)
            now.inheritable = want.inheritable
        for cap in bits(now.bounding & ~want.bounding):
            target.call("prctl", PR_CAPBSET_DROP, cap, 0, 0, 0)
        now.bounding = want.bounding
        if switching_ids:
            now.securebits |= SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS
            target.call("prctl", PR_SET_SECUREBITS, now.securebits, 0, 0, 0)
    except RemoteSyscallFailed as exc:
        raise _refused(target, "capabilities", exc) from None


def finish(target: RemoteProcess, want: image_pb2.Caps, now: image_pb2.Caps) -> None:
    """Steps 5-7, after the ids were switched with no capability lost; `now` as prepare() left it."""
    try:
        if now.ambient & ~want.ambient:
            target.call("prctl", PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
            now_ambient = 0
        else:
            now_ambient = now.ambient
        for cap in bits(want.ambient & ~now_ambient):
            target.call("prctl", PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)
        if now.securebits != want.securebits:
            target.call("prctl", PR_SET_SECUREBITS, want.securebits, 0, 0, 0)
        if (want.effective, want.permitted) != (now.effective, now.permitted):
            _capset(target, want.effective, want.permitted, want.inheritable)
    except RemoteSyscallFailed as exc:
        raise _refused(target, "capabilities", exc) from None
