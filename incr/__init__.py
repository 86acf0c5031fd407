"""incr: incremental checkpoint/restore of running Linux process trees.

Public API::

    incr.Store(path)                        a checkpoint store
    incr.checkpoint(pid, store, kill=False) -> CheckpointInfo
    incr.restore(store, at=None, id=None)   -> RestoredJob (job.pid, job.wait())
"""

__version__ = "0.1.0"

from incr.api import CheckpointInfo, Store, checkpoint, restore

__all__ = ["CheckpointInfo", "Store", "__version__", "checkpoint", "restore"]
