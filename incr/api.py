"""The public Python API; the command line is a thin layer over it.

    import incr
    store = incr.Store("/scratch/job.incr")
    info = incr.checkpoint(pid, store)
    job = incr.restore(store, at="10m")      # or id=..., or latest (default)
    job.wait()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incr import predump, restoring
from incr.engine.external import Choice
from incr.errors import IncrError, UsageError
from incr.pagestore import Store as PageStore
from incr.proto import image_pb2, store_pb2
from incr.snapshot import Progress
from incr.timespec import iso_utc, local_short, parse_at

#: The largest deleted file whose contents a checkpoint stores unless told otherwise (ghost_limit).
DEFAULT_GHOST_LIMIT: int = predump.DEFAULT_GHOST_LIMIT

log = logging.getLogger("incr")


class NoCheckpoint(IncrError):
    """The store holds no checkpoint matching the request."""


@dataclass
class CheckpointInfo:
    id: str
    epoch: float
    kind: str
    parent: str
    root_pid: int
    comm: str
    stats: store_pb2.Stats
    snapshot: store_pb2.Snapshot = field(repr=False)

    @classmethod
    def from_snapshot(cls, sid: str, snap: store_pb2.Snapshot) -> CheckpointInfo:
        tree = image_pb2.TreeImage.FromString(snap.payload)
        comm = tree.processes[0].comm if tree.processes else ""
        return cls(id=sid, epoch=snap.epoch, kind=snap.kind, parent=snap.parent, root_pid=tree.root_pid,
                   comm=comm, stats=snap.stats, snapshot=snap)

    @property
    def signals_left_out(self) -> list[tuple[int, int]]:
        """(PID, signal number) of each signal the checkpoint left out (api.checkpoint's hold_signals)."""
        label = self.snapshot.labels.get(predump.LEFT_OUT_LABEL, "")
        return [(int(pid), int(signo)) for pid, signo in (item.split(":") for item in label.split(",") if item)]

    @property
    def tree(self) -> image_pb2.TreeImage:
        return image_pb2.TreeImage.FromString(self.snapshot.payload)

    def summary(self) -> dict[str, Any]:
        """The fields of `incr list --json` (DESIGN §6)."""
        s = self.stats
        return {
            "id": self.id, "time": iso_utc(self.epoch), "epoch": self.epoch, "kind": self.kind,
            "parent": self.parent or None, "root_pid": self.root_pid, "comm": self.comm,
            "pages_total": s.pages_total, "pages_dirty": s.pages_dirty, "pages_zero": s.pages_zero,
            "pages_new": s.pages_new, "bytes_stored": s.bytes_stored,
            "downtime_ms": round(s.downtime_ms, 3), "total_ms": round(s.total_ms, 3),
            "tracker": s.tracker, "rounds": s.rounds,
            "precopy_rewritten": int(self.snapshot.labels.get(predump.REWRITTEN_LABEL, "0")),
        }


class Store:
    """A checkpoint store directory.  Opening never creates it; checkpoint() does."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _open(self) -> PageStore:
        return PageStore.open(self.path)

    def checkpoints(self) -> list[CheckpointInfo]:
        """Committed checkpoints, oldest first."""
        return self._listing()[0]

    def _listing(self) -> tuple[list[CheckpointInfo], list[tuple[str, str, float]]]:
        """Committed snapshots, oldest first, and the damaged manifests left out: (id, what, mtime)."""
        with self._open() as store:
            infos = [CheckpointInfo.from_snapshot(sid, snap) for sid, snap in store.snapshots()]
            return infos, store.damaged_manifests

    def get(self, id_or_prefix: str) -> CheckpointInfo:
        with self._open() as store:
            return CheckpointInfo.from_snapshot(*store.load(id_or_prefix))

    def select(self, *, at: str | float | None = None, id: str | None = None,
               fallback: bool = False) -> tuple[CheckpointInfo, str]:
        """The checkpoint a restore means, and a sentence saying which and why.

        `at` picks the newest checkpoint at or before that time; no argument
        picks the latest.  Pre-dumps are never picked: they are not restorable.
        A damaged manifest that may be a newer candidate (written after the one
        picked) is never passed over silently: without `fallback`, NoCheckpoint
        names it.
        """
        if id is not None:
            info = self.get(id)
            if info.kind != "checkpoint":
                raise NoCheckpoint(f"{id} is a pre-dump, which cannot be restored; pick a checkpoint "
                                   "from `incr list`")
            return info, f"checkpoint {info.id[:12]} of {local_short(info.epoch)}"
        infos, damaged = self._listing()
        candidates = [c for c in infos if c.kind == "checkpoint"]
        when = None if at is None else float(at) if isinstance(at, (int, float)) else parse_at(at)
        if not candidates:
            self._no_silent_skip(damaged, 0.0, when, fallback)
            raise NoCheckpoint(f"store {self.path} holds no checkpoint yet (take one with `incr checkpoint PID`)")
        if when is None:
            info = candidates[-1]
            self._no_silent_skip(damaged, info.epoch, when, fallback)
            return info, f"latest checkpoint {info.id[:12]} of {local_short(info.epoch)}"
        eligible = [c for c in candidates if c.epoch <= when]
        if not eligible:
            raise NoCheckpoint(f"no checkpoint at or before {local_short(when)}: the first one is of "
                               f"{local_short(candidates[0].epoch)}")
        info = eligible[-1]
        self._no_silent_skip(damaged, info.epoch, when, fallback)
        return info, f"checkpoint {info.id[:12]} of {local_short(info.epoch)}, the newest at or before " \
                     f"{local_short(when)}"

    def _no_silent_skip(self, damaged: list[tuple[str, str, float]], picked: float, when: float | None,
                        fallback: bool) -> None:
        # A manifest is written when its checkpoint commits, after its instant: one written after
        # the pick (and, with --at, not long after T) may be the checkpoint that was meant.
        suspects = [(sid, what) for sid, what, mtime in damaged
                    if mtime > picked and (when is None or mtime <= when + MANIFEST_LAG)]
        if not suspects:
            return
        sid, what = suspects[-1]
        if fallback:
            log.warning("checkpoint %s is damaged (%s) and may be a newer checkpoint: passed over", sid[:12], what)
            return
        raise NoCheckpoint(f"checkpoint {sid[:12]} is damaged ({what}) and may be the one meant; nothing was "
                           "restored (`incr restore --fallback` takes the newest intact one, `incr verify` tells "
                           "more)")


#: Longest a checkpoint's manifest may be written after its instant (a long commit).
MANIFEST_LAG = 600.0


def checkpoint(pid: int, store: Store | str | os.PathLike[str], *, kill: bool = False, tracker: str = "auto",
               precopy: bool = True, copy_buffer: int | None = None, wait: bool = True,
               progress: Progress | None = None, hold_signals: frozenset[int] = frozenset(),
               ghost_limit: int | None = None, external: bool = False,
               tcp_established: bool = False) -> CheckpointInfo:
    """Take one consistent checkpoint of the process `pid`; it keeps running unless kill=True.

    Incremental when an earlier checkpoint or pre-dump of the same process in
    the same store left a dirty-page tracker in it; `tracker` is auto,
    uffd-wp, soft-dirty or hash; `precopy` runs copy rounds before the freeze;
    `copy_buffer` bounds the memory the frozen copy may take (bytes); `wait`: when another
    writer holds the store, wait for it (else fail at once with StoreLocked, naming its PID);
    `progress(what, done, total)` hears of the pages stored, batch by batch (incr.cli.progress.ProgressLine);
    `hold_signals`: signals the checkpoint leaves out, queued or arriving while it is frozen (the job
    still gets them; CheckpointInfo.signals_left_out names those it had): the stop request a final
    checkpoint answers, which a restore must not bring back.  `ghost_limit`: the largest file the job
    holds deleted whose contents the checkpoint stores (bytes; default predump.DEFAULT_GHOST_LIMIT); a
    larger one refuses the checkpoint.  `external`: a pipe or socket leading out of the job (not
    its stdio) is recorded as external, with a warning, instead of refusing the checkpoint; the
    restore must then say what each becomes (restore(external=...)).  `tcp_established`: a TCP
    connection to a peer outside the job is checkpointed (its peer, the caller says, will still be
    there at the restore) instead of refusing the checkpoint; with kill=True the connections' ports
    stay locked (no packet in or out) until the checkpoint is restored.
    """
    path = store.path if isinstance(store, Store) else Path(store)
    options = predump.Options(tracker=tracker, precopy=precopy, wait=wait, progress=progress,
                              hold_signals=hold_signals, external=external, tcp_established=tcp_established)
    if copy_buffer is not None:
        options.buffer_bound = copy_buffer
    if ghost_limit is not None:
        options.ghost_limit = ghost_limit
    result = predump.checkpoint(pid, path, kill=kill, options=options)
    return CheckpointInfo.from_snapshot(result.id, result.snapshot)


def predump_round(pid: int, store: Store | str | os.PathLike[str], *, tracker: str = "auto",
                  wait: bool = True) -> CheckpointInfo:
    """Copy the pages written since the last checkpoint or pre-dump while the job runs (not restorable):
    the next checkpoint then only copies what is written after it.  `wait` as for checkpoint()."""
    path = store.path if isinstance(store, Store) else Path(store)
    result = predump.checkpoint(pid, path, options=predump.Options(tracker=tracker, wait=wait), kind="predump")
    return CheckpointInfo.from_snapshot(result.id, result.snapshot)


def restore(store: Store | str | os.PathLike[str], *, at: str | float | None = None, id: str | None = None,
            leave_stopped: bool = False, new_pidns: bool = False, stdio: str = "inherit",
            detach: bool = False, fallback: bool = False, progress: Progress | None = None,
            external: Sequence[str] = ()) -> restoring.RestoredJob:
    """Restore a checkpoint (default: the latest) with its original PIDs; the job runs on its own.

    The restored process (or, with `new_pidns`, the PID namespace it runs in)
    is a child of the calling process: ``job.wait()`` returns its exit status.
    `stdio`: "inherit" (the job's stdio from the launcher becomes the caller's) or
    "original" (a log file shared with the launcher is reopened, appending at its end).
    With `detach` (the caller will not wait for it) a root with a parent-death
    signal is the child of the caller's subreaper (or init) instead, which it
    would become when the caller exits: the caller's exit does not signal it.
    With `fallback` (not with `id`), a damaged checkpoint is passed over for the one before it, and
    so on (SCR's rule: the newest that restores intact); `why` then says which was taken and why.
    `progress(what, done, total)` hears of the pages written into the job, batch by batch.
    `external`: what each descriptor that led outside the job becomes, "N:PATH" or "N:null"
    ("PID/N:..." to name the process too; checkpoint(external=True), incr.engine.external).
    """
    try:
        externals = [Choice.parse(text) for text in external]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    st = store if isinstance(store, Store) else Store(store)
    info, why = st.select(at=at, id=id, fallback=fallback)
    if not fallback:
        return restoring.restore(st.path, info.id, why=why, leave_stopped=leave_stopped, new_pidns=new_pidns,
                                 stdio=stdio, detach=detach, progress=progress, externals=externals)
    if id is not None:
        raise UsageError("--fallback walks back from --latest or --at T; with --id there is nothing to fall back to")
    candidates = [c for c in st.checkpoints() if c.kind == "checkpoint" and c.epoch <= info.epoch]
    damaged: list[restoring.DamagedCheckpoint] = []
    for candidate in reversed(candidates):
        try:
            job = restoring.restore(st.path, candidate.id, why=why, leave_stopped=leave_stopped,
                                    new_pidns=new_pidns, stdio=stdio, detach=detach, progress=progress,
                                    externals=externals)
        except restoring.DamagedCheckpoint as e:
            log.warning("checkpoint %s of %s is damaged (%s): trying the one before it", candidate.id[:12],
                        local_short(candidate.epoch), e.damage.args[1] if len(e.damage.args) > 1 else e.damage)
            damaged.append(e)
            continue
        if damaged:
            job.why = (f"checkpoint {candidate.id[:12]} of {local_short(candidate.epoch)}, the newest intact one "
                       f"({len(damaged)} newer {'is' if len(damaged) == 1 else 'are'} damaged)")
        return job
    raise NoCheckpoint(f"none of the {len(candidates)} checkpoints up to {info.id[:12]} is intact "
                       "(`incr verify` tells what is damaged)")
