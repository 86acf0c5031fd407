"""Errors the page store reports to its users.

Borg's habit: every error is a class whose docstring's first line is the
message template, filled with the exception's arguments, so that the CLI can
print ``str(exc)`` as one line and exit with ``exc.exit_code``.  A traceback is
for bugs only; anything a user can cause (a wrong path, a damaged disk, a
second writer) is one of these.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import ClassVar

import lmdb

from incr.errors import Error


class StoreError(Error):
    """store error: {}"""

    #: Process exit status the CLI uses: 1 for failures, 2 for bad usage.
    exit_code: ClassVar[int] = 1

    def __str__(self) -> str:
        template = (type(self).__doc__ or "{}").strip().splitlines()[0]
        try:
            return template.format(*self.args)
        except (IndexError, KeyError):
            # A raise site passed the wrong arguments: still say something useful.
            return f"{template} {self.args!r}"


class StoreNotFound(StoreError):
    """store {} does not exist (create one with "incr checkpoint", or pass --store)"""


class NotAStore(StoreError):
    """{} is not an incr store ({}); pass --store with a store or an empty directory"""


class UnsafeStore(StoreError):
    """store {} is not safe to use: {}; fix it with: {}"""


class UnsupportedStore(StoreError):
    """store {} uses {}, which this version of incr cannot read (upgrade incr)"""


class UnsupportedVersion(UnsupportedStore):
    """store {} has format version {}, this version of incr reads version {} only (upgrade incr)"""


class InvalidSnapshotId(StoreError):
    """"{}" is not a checkpoint id: give at least 4 hex digits of an id shown by "incr list\""""

    exit_code: ClassVar[int] = 2


class SnapshotNotFound(StoreError):
    """no checkpoint {} in store {} (see "incr list")"""

    exit_code: ClassVar[int] = 2


class AmbiguousId(StoreError):
    """checkpoint id {} is ambiguous, it matches {} checkpoints ({}); give more digits"""

    exit_code: ClassVar[int] = 2


class CorruptStore(StoreError):
    """store {} is damaged: {} (run "incr verify")"""


class CorruptPageMap(CorruptStore):
    """page map is damaged: {}"""


class StoreLocked(StoreError):
    """store {} is locked by another writer (pid {}); try again when it has finished"""


class StoreAccessError(StoreError):
    """cannot use store {}: {}"""


@contextlib.contextmanager
def os_errors(store: os.PathLike[str] | str) -> Iterator[None]:
    """Turn an OSError (full disk, read-only mount, permissions) or an LMDB error into a StoreAccessError."""
    try:
        yield
    except OSError as e:
        what = e.strerror or str(e)
        if e.filename:
            what = f"{what}: {e.filename}"
        raise StoreAccessError(store, what) from e
    except lmdb.Error as e:
        # Readers table full, disk full inside LMDB, a damaged index: one line, not a traceback.
        raise StoreAccessError(store, f"index: {e}") from e
