"""Supervising a running job: wait for it, pass on the signals meant for it,
and end with its exit status (what `incr restore` does when attached)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

from incr.restoring import exit_code

# Sent to the supervisor by batch systems and service managers: the job must get them.
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# Typed at the terminal: the kernel already sends them to the job when it shares our process group.
TERMINAL = (signal.SIGINT, signal.SIGQUIT)


@contextmanager
def forwarding_signals(pid: int) -> Iterator[None]:
    try:
        same_group = os.getpgid(pid) == os.getpgrp()
    except ProcessLookupError:
        same_group = False          # it ended already: waiting for it returns at once

    def forward(signo: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            os.kill(pid, signo)

    def terminal(signo: int, _frame: FrameType | None) -> None:
        if not same_group:
            forward(signo, _frame)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    previous.update({s: signal.signal(s, terminal) for s in TERMINAL})
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def wait_for_job(pid: int, on_watching: Callable[[], None] | None = None, *, child: int = 0) -> int:
    """Block until the job `pid` ends, forwarding signals to it; its exit status as a shell reports it.

    `child`: the child of ours whose end carries the job's status, when it is
    not `pid` itself (a PID namespace's init).  `on_watching` runs once signals
    are being forwarded (e.g. to announce the job).
    """
    with forwarding_signals(pid):
        if on_watching:
            on_watching()
        _, status = os.waitpid(child or pid, 0)
    return exit_code(status)
