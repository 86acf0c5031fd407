"""Process trees: finding every process of a job and freezing them all.

Freezing goes parents first and repeats until a pass over the frozen
processes' children finds none new: a process still running could fork a
child unseen.  Zombies (exited, not yet reaped) cannot be traced and need not
be: they are recorded from /proc and re-created exited.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol

from . import proc
from .errors import EngineError, NotTraceable, ProcessNotFound, ProcessVanished
from .freeze import Frozen, check_traceable, freeze


def descendants(root: int) -> list[int]:
    """root and every process below it, parents before children (a snapshot of /proc: it may change)."""
    order = [root]
    i = 0
    while i < len(order):
        with contextlib.suppress(ProcessNotFound):
            order.extend(proc.children(order[i]))
        i += 1
    return order


def is_zombie(pid: int) -> bool:
    try:
        return proc.stat(pid).state in ("Z", "X")
    except ProcessNotFound:
        return False


def gone(pid: int) -> bool:
    """Exited: a zombie, or reaped already."""
    return is_zombie(pid) or not proc.exists(pid)


class Settler(Protocol):
    def before_release(self, *, kill: bool) -> None: ...
    def after_release(self, *, kill: bool) -> None: ...


@dataclass
class FrozenTree:
    """Every process of a tree in ptrace-stop (zombies aside), parents before children."""

    root: int
    order: list[int] = field(default_factory=list)        # parents first; zombies included
    frozen: dict[int, Frozen] = field(default_factory=dict)
    zombies: set[int] = field(default_factory=set)
    #: What the dump left to settle as the job is let go or killed (inet.Hold), told before and after.
    settlers: list[Settler] = field(default_factory=list)

    def release(self, *, kill: bool = False) -> None:
        """Thaw every process (children first), or kill them all (parents first, so none is re-parented
        and lost track of)."""
        settlers, self.settlers = self.settlers, []
        for s in settlers:
            s.before_release(kill=kill)
        order = self.order if kill else list(reversed(self.order))
        errors = []
        for pid in order:
            if pid in self.frozen:
                try:
                    self.frozen[pid].release(kill=kill)
                except (OSError, EngineError) as exc:
                    errors.append(exc)
        for s in settlers:
            s.after_release(kill=kill)
        if errors:
            raise errors[0]

    def left_out(self) -> dict[int, list[int]]:
        """Per process, the signals the image leaves out (held: see freeze(hold=)), if any."""
        return {pid: sorted(f.left_out) for pid, f in self.frozen.items() if f.left_out}

    def __enter__(self) -> FrozenTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def freeze_tree(root: int, *, options: int = 0, hold: frozenset[int] = frozenset()) -> FrozenTree:
    """Seize and stop every thread of every process of the tree rooted at `root`; `hold`: signals
    kept out of the image (engine.freeze.Frozen.hold)."""
    check_traceable(root)
    tree = FrozenTree(root=root)
    try:
        while True:
            new = [p for p in descendants(root) if p not in tree.frozen and p not in tree.zombies]
            if not new:
                break
            for pid in new:
                if pid == root:
                    tree.frozen[pid] = freeze(pid, options=options, hold=hold)
                elif is_zombie(pid):
                    tree.zombies.add(pid)
                else:
                    try:
                        tree.frozen[pid] = freeze(pid, options=options, hold=hold)
                    except (ProcessNotFound, ProcessVanished, NotTraceable):
                        if not gone(pid):
                            raise
                        if not is_zombie(pid):
                            continue                # exited and reaped meanwhile
                        tree.zombies.add(pid)       # exited between the listing and the seize
                tree.order.append(pid)
    except BaseException:
        tree.release()
        raise
    return tree                           # each pass lists parents first, and passes only add children
