"""incr checkpoint PID [--kill]"""

from __future__ import annotations

import argparse
from typing import Any

from incr import api
from incr.cli.output import print_json, size
from incr.errors import UsageError

HELP = """\
Take one consistent checkpoint of a running process now.  The process is
frozen only while its state and changed pages are copied to memory, then runs
on (or is killed with --kill, once the checkpoint is safely committed).

Supported today: single-threaded processes without children, their memory
(heap, stack, anonymous and private file mappings), regular files,
directories and /dev/null|zero|full|random|urandom open at any offset,
a terminal or pipe on stdin/stdout/stderr, signal handlers, blocked and
queued signals, interval timers, resource limits, cwd, umask and ids.
Anything else (threads, child processes, sockets, pipes inside the job,
shared memory, eventfd/epoll/timerfd, io_uring, POSIX timers, seccomp) makes
the checkpoint fail with a message naming it; nothing is stored and the
process runs on untouched.  The store is created if it does not exist."""


def register(sub: Any) -> None:
    p = sub.add_parser("checkpoint", help="take a consistent checkpoint of a process now", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pid", metavar="PID", help="process to checkpoint")
    p.add_argument("--kill", action="store_true", help="kill the process once the checkpoint is committed")
    p.add_argument("--json", action="store_true", help="print the new checkpoint as JSON")
    p.set_defaults(func=run)


def parse_pid(text: str) -> int:
    try:
        pid = int(text)
    except ValueError:
        raise UsageError(f"PID must be a number, not {text!r}") from None
    if pid <= 0:
        raise UsageError(f"PID must be positive, not {pid}")
    return pid


def run(args: argparse.Namespace) -> int:
    info = api.checkpoint(parse_pid(args.pid), args.store, kill=args.kill)
    if args.json:
        print_json(info.summary())
    else:
        s = info.stats
        print(f"checkpoint {info.id[:12]} of PID {info.root_pid} ({info.comm}): {s.pages_total} pages, "
              f"{size(s.bytes_stored)} new in the store, frozen {s.downtime_ms:.1f} ms"
              + (", process killed" if args.kill else ""))
    return 0
