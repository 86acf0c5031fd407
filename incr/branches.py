"""Where history branched: the files restores cut back, kept beside the store.

Restoring an older checkpoint truncates the files the job alone writes back to their size at
that checkpoint (engine/outside.py).  The newer checkpoints then describe a world that is gone:
their files were longer.  As long as the job restored from the older one has not reached them
again, restoring a newer checkpoint (`--latest` most of all, when the restored job died before
its first checkpoint) is refused because such a file is shorter than at that checkpoint; this
module turns that refusal into one that says why: history branched at the older checkpoint.

The record is ``restore-cuts.json`` in the store's directory (not in the runtime dir): a job is
often restored on another node after a requeue, where the runtime dir of the first restore is
gone, while the store and the job's files (on a shared file system) are the same.  It is not
part of the store's format: the page store neither reads nor writes it, `incr verify` ignores
it, and losing it only makes the refusal less explicit.  It is written whole and renamed into
place (0600), newest cut per path; a store that cannot be written (read-only) gets no record,
with a note in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from incr.engine.outside import Cut, writable
from incr.errors import IncrError
from incr.proto import image_pb2
from incr.timespec import local_short

log = logging.getLogger(__name__)

RECORD = "restore-cuts.json"


@dataclass(frozen=True)
class CutRecord:
    path: str
    before: int               # bytes, before the restore cut it
    after: int                # bytes, its size at the checkpoint restored
    checkpoint: str           # id of the checkpoint that restore restored
    checkpoint_epoch: float
    restored_at: float        # Unix seconds of the restore


class HistoryBranched(IncrError):
    """A newer checkpoint cannot come back: a restore of an older one cut back a file it needs."""


def record(store_path: Path, checkpoint_id: str, checkpoint_epoch: float, cuts: list[Cut]) -> None:
    """Note the files a restore of `checkpoint_id` cut back."""
    if not cuts:
        return
    now = time.time()
    records = {r.path: r for r in load(store_path)}
    for c in cuts:
        records[c.path] = CutRecord(c.path, c.before, c.after, checkpoint_id, checkpoint_epoch, now)
    target = store_path / RECORD
    tmp = target.with_name(f"{RECORD}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"cuts": [asdict(r) for r in records.values()]}, f, indent=1)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.info("could not note the files this restore cut back in %s: %s", target, exc.strerror or exc)


def load(store_path: Path) -> list[CutRecord]:
    """The cuts recorded beside the store ([] when none, or the record is unreadable)."""
    try:
        data = json.loads((store_path / RECORD).read_text(encoding="utf-8"))
        return [CutRecord(**r) for r in data["cuts"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def refuse_if_branched(store_path: Path, checkpoint_id: str, epoch: float, tree: image_pb2.TreeImage) -> None:
    """HistoryBranched when a file the job writes is shorter now than at this checkpoint because a
    restore of an older checkpoint cut it back (and the job restored then has not written it
    back to this checkpoint's size)."""
    records = {r.path: r for r in load(store_path)}
    if not records:
        return
    for p in tree.processes:
        for f in p.files:
            if f.kind != image_pb2.OpenFile.REGULAR or not writable(f.flags) or f.path not in records:
                continue
            r = records[f.path]
            try:
                now = os.stat(f.path).st_size
            except OSError:
                continue
            if r.checkpoint != checkpoint_id and r.checkpoint_epoch < epoch and r.after <= now < f.file.size:
                raise HistoryBranched(
                    f"cannot restore checkpoint {checkpoint_id[:12]} of {local_short(epoch)}: {f.path} is shorter "
                    f"than at this checkpoint ({now} < {f.file.size} bytes) because the restore of the older "
                    f"checkpoint {r.checkpoint[:12]} of {local_short(r.checkpoint_epoch)}, on "
                    f"{local_short(r.restored_at)}, cut it back from {r.before} to {r.after} bytes: history "
                    f"branched there and this checkpoint is on the branch left then; nothing was restored "
                    f"(restore {r.checkpoint[:12]} again, `incr restore --id {r.checkpoint[:12]}`, or a "
                    "checkpoint taken after that restore)")
