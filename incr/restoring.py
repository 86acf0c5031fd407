"""Restoring a checkpoint from the store: load, preflight, rebuild."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from incr import branches
from incr.engine import external, ghost, outside
from incr.engine import restore as engine_restore
from incr.engine.errors import EngineError
from incr.engine.restore import RestoreTiming
from incr.errors import IncrError
from incr.jobstate import record_origin, runtime_dir
from incr.pagestore import CorruptStore, Store
from incr.proto import image_pb2
from incr.snapshot import PageTally, Progress, StorePages


@dataclass
class RestoredJob:
    """A restored process tree, child of the process that restored it.

    `pid` is the root's PID as the caller sees it.  With a new PID namespace
    `vpid` is the one the job sees (its original) and `init` that namespace's
    PID 1: the caller's child, ending with the root's status; otherwise
    `vpid` == `pid`, `init` is 0 and the root itself is the caller's child.
    """

    pid: int
    vpid: int
    init: int
    checkpoint_id: str
    why: str
    timing: RestoreTiming

    @property
    def child(self) -> int:
        """The process to wait for: its exit status is the job's."""
        return self.init or self.pid

    def wait(self) -> int:
        """Wait for the job to end; its exit status, 128+N when killed by signal N (as shells say)."""
        _, status = os.waitpid(self.child, 0)
        return exit_code(status)


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


STDIO_CHOICES = ("inherit", "original")


class DamagedCheckpoint(IncrError):
    """A checkpoint whose pages or page maps the store cannot give back intact: never restored."""

    def __init__(self, checkpoint_id: str, damage: CorruptStore) -> None:
        self.checkpoint_id = checkpoint_id
        self.damage = damage
        what = damage.args[1] if len(damage.args) > 1 else str(damage)
        super().__init__(f"checkpoint {checkpoint_id[:12]} is damaged ({what}); nothing was restored "
                         "(`incr verify` tells more; `incr restore --fallback` takes the newest intact checkpoint)")


def names_journal() -> Path:
    """Where this restore notes the names it gives files for a moment (engine/ghost.py Names)."""
    return runtime_dir() / "restoring" / f"{os.getpid()}.names"


def restore(store_path: Path, checkpoint_id: str, *, why: str = "", leave_stopped: bool = False,
            new_pidns: bool = False, stdio: str = "inherit",
            detach: bool = False, progress: Progress | None = None,
            externals: list[external.Choice] | None = None) -> RestoredJob:
    if stdio not in STDIO_CHOICES:
        raise ValueError(f"stdio must be one of {', '.join(STDIO_CHOICES)}, not {stdio!r}")
    with Store.open(store_path) as store:
        sid, snap = store.load(checkpoint_id)
        tree = image_pb2.TreeImage.FromString(snap.payload)
        if stdio == "original":
            tree = outside.with_original_stdio(tree)
        branches.refuse_if_branched(store_path, sid, snap.epoch, tree)
        ghost.sweep(names_journal().parent)          # what a restore killed half-way left
        engine_restore.preflight(tree, new_pidns=new_pidns, externals=externals)
        root = tree.processes[0]
        tally = PageTally(snap, progress) if progress is not None else None
        pages = StorePages(store, snap, root.pid, tally)
        # Every page is read and checked before any file of the job's is touched, and a damaged
        # one ends the restore with the tree half-built: it is killed, nothing outside changed.
        try:
            with outside.recording_cuts() as cuts:
                try:
                    done = engine_restore.restore_tree(tree, lambda pid: StorePages(store, snap, pid, tally),
                                                       shm_pages=pages.shm_pages, leave_stopped=leave_stopped,
                                                       new_pidns=new_pidns, detach=detach,
                                                       names_journal=names_journal(), externals=externals)
                finally:
                    branches.record(store_path, sid, snap.epoch, cuts)     # cut even if the restore failed after
        except CorruptStore as e:
            raise DamagedCheckpoint(sid, e) from None
    if not done.init:
        # The parent of its next checkpoint (predump._lineage_parent); gone with the process.
        with contextlib.suppress(OSError, EngineError):
            record_origin(done.root, store_path, sid)
    return RestoredJob(pid=done.root, vpid=root.pid, init=done.init, checkpoint_id=sid, why=why,
                       timing=done.timing)
