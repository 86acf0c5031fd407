"""incr: incremental checkpoint/restore of running Linux process trees.

Public API::

    incr.Store(path)                        a checkpoint store
    incr.checkpoint(pid, store, kill=False) -> CheckpointInfo
    incr.restore(store, at=None, id=None)   -> RestoredJob (job.pid, job.wait())

Every error is an ``incr.Error`` (str(exc) is one line for users); the families below it are
``incr.IncrError`` (``incr.UsageError``, ``incr.NoCheckpoint``, ``incr.DamagedCheckpoint``),
``incr.EngineError`` (``incr.Unsupported``, ``incr.RestoreError``, ...) and ``incr.StoreError``
(``incr.CheckpointNotFound``, ``incr.StoreLocked``, ...).
"""

__version__ = "0.1.0"

from incr.api import CheckpointInfo, NoCheckpoint, Store, checkpoint, predump_round, restore
from incr.engine.errors import (
    EngineError,
    JobStillRunning,
    NotTraceable,
    PidTaken,
    ProcessNotFound,
    ProcessVanished,
    RestoreError,
    Unsupported,
)
from incr.errors import Error, IncrError, UsageError
from incr.pagestore.errors import (
    AmbiguousId,
    CorruptStore,
    InvalidSnapshotId,
    NotAStore,
    SnapshotNotFound,
    StoreAccessError,
    StoreError,
    StoreLocked,
    StoreNotFound,
    UnsafeStore,
)
from incr.restoring import DamagedCheckpoint, RestoredJob
from incr.timespec import TimeSpecError

#: The name the command line uses for what the store calls a snapshot.
CheckpointNotFound = SnapshotNotFound

__all__ = [
    "AmbiguousId",
    "CheckpointInfo",
    "CheckpointNotFound",
    "CorruptStore",
    "DamagedCheckpoint",
    "EngineError",
    "Error",
    "IncrError",
    "InvalidSnapshotId",
    "JobStillRunning",
    "NoCheckpoint",
    "NotAStore",
    "NotTraceable",
    "PidTaken",
    "ProcessNotFound",
    "ProcessVanished",
    "RestoreError",
    "RestoredJob",
    "SnapshotNotFound",
    "Store",
    "StoreAccessError",
    "StoreError",
    "StoreLocked",
    "StoreNotFound",
    "TimeSpecError",
    "UnsafeStore",
    "Unsupported",
    "UsageError",
    "__version__",
    "checkpoint",
    "predump_round",
    "restore",
]
