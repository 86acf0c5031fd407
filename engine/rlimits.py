"""Resource limits: read from /proc/PID/limits, set on the stub with prlimit(2).

/proc is used for reading because prlimit(2) on another user's process needs
CAP_SYS_RESOURCE, which root lacks in some containers (this machine's
included).  For the same reason a hard limit above incr's own may not be
restorable: it is then clamped, with a warning naming it.
"""

from __future__ import annotations

import errno
import logging
import resource

from incr.proto import image_pb2

from . import proc

log = logging.getLogger(__name__)

# Rows of /proc/PID/limits in RLIMIT_* order (RLIMIT_CPU = 0 ... RLIMIT_RTTIME = 15).
_ROWS = ("Max cpu time", "Max file size", "Max data size", "Max stack size", "Max core file size",
         "Max resident set", "Max processes", "Max open files", "Max locked memory", "Max address space",
         "Max file locks", "Max pending signals", "Max msgqueue size", "Max nice priority",
         "Max realtime priority", "Max realtime timeout")


def _value(text: str) -> int:
    return resource.RLIM_INFINITY if text == "unlimited" else int(text)


def dump(pid: int) -> list[image_pb2.Rlimit]:
    table = proc.read_text(pid, "limits").splitlines()
    out = []
    for res, row in enumerate(_ROWS):
        line = next(line for line in table if line.startswith(row))
        soft, hard = line[len(row):].split()[:2]
        out.append(image_pb2.Rlimit(resource=res, soft=_value(soft), hard=_value(hard)))
    return out


def room_for_fds(pid: int, need: int) -> None:
    """Process `pid` may have descriptors up to number need-1 for the while (its table being built):
    its soft RLIMIT_NOFILE raised, up to its hard one, when lower.  The job's own limit comes after
    the table (restore_open_files): descriptors above a soft limit stay open, as the job had them."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    want = max(soft, need) if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
    if want != soft:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (want, hard))


def restore_but_open_files(pid: int, limits: list[image_pb2.Rlimit]) -> None:
    restore(pid, [lim for lim in limits if lim.resource != resource.RLIMIT_NOFILE])


def restore_open_files(pid: int, limits: list[image_pb2.Rlimit]) -> None:
    restore(pid, [lim for lim in limits if lim.resource == resource.RLIMIT_NOFILE])


def restore(pid: int, limits: list[image_pb2.Rlimit]) -> None:
    for lim in limits:
        try:
            resource.prlimit(pid, lim.resource, (lim.soft, lim.hard))
        except PermissionError:
            _, hard = resource.prlimit(pid, lim.resource)
            soft = lim.soft if hard == resource.RLIM_INFINITY or 0 <= lim.soft <= hard else hard
            log.warning("PID %d: resource limit %s: hard limit %s cannot be raised back (no CAP_SYS_RESOURCE); "
                        "keeping %s", pid, _ROWS[lim.resource], lim.hard, hard)
            resource.prlimit(pid, lim.resource, (soft, hard))
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            log.warning("PID %d: resource limit %s = (%s, %s) refused by this kernel", pid, _ROWS[lim.resource],
                        lim.soft, lim.hard)
