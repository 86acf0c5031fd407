"""Where things are in a store, and its ``config`` file.

``config`` is written last when a store is created (by an exclusive link of
a fsynced temporary file), so its presence means "this is a store", and a
directory holding only layout entries and no config is a creation that was
interrupted, safe to finish.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from google.protobuf.message import DecodeError

from incr.proto import store_pb2

from .digest import DIGEST_NAME, PAGE_SIZE
from .errors import CorruptStore, NotAStore, StoreNotFound, UnsafeStore, UnsupportedStore, UnsupportedVersion, os_errors
from .fsutil import DIR_MODE, FILE_MODE, TMP_SUFFIX, fsync_dir, make_dir, read_file, temp_name, write_durable

STORE_FORMAT: Final = "incr-store"
#: Version of the on-disk format this code reads and writes (docs/store-format.md, "Versioning").
#: 3: packs may hold zstd dictionaries (pack version 2); 1 and 2 are read too.
STORE_VERSION: Final = 3

_SNAPSHOT_ID = re.compile(r"[0-9a-f]{32}")
_CONFIG_TMP_STEM: Final = "config-"


def is_snapshot_id(name: str) -> bool:
    return _SNAPSHOT_ID.fullmatch(name) is not None


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def packs(self) -> Path:
        return self.root / "packs"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def index(self) -> Path:
        return self.root / "index"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def write_lock(self) -> Path:
        return self.locks / "write"

    def snapshot(self, snapshot_id: str) -> Path:
        return self.snapshots / snapshot_id

    def ensure_dirs(self) -> None:
        """Create missing layout directories (a copied store may lack empty ones)."""
        for d in (self.packs, self.snapshots, self.locks):
            if not d.is_dir():
                make_dir(d)

    def stale_temporaries(self) -> list[Path]:
        """``*.tmp`` files writers leave when they die; only safe to delete under the write lock."""
        # Not config-*.tmp: a process creating the store concurrently may own one.
        found: list[Path] = []
        for d in (self.packs, self.snapshots):
            with contextlib.suppress(FileNotFoundError):
                found += [d / n for n in os.listdir(d) if n.endswith(TMP_SUFFIX)]
        return found


_LAYOUT_ENTRIES: Final = frozenset({"packs", "snapshots", "index", "locks"})


def _is_leftover_of_creation(name: str) -> bool:
    return name in _LAYOUT_ENTRIES or (name.startswith(_CONFIG_TMP_STEM) and name.endswith(TMP_SUFFIX))


def open_layout(root: Path, *, create: bool) -> tuple[Layout, store_pb2.StoreConfig]:
    """Check ``root`` is a store this code can use (creating it if allowed) and return its config.

    Raises UnsafeStore, before reading anything, if the store (its directory,
    config, or one of its layout directories) belongs to another user or is
    writable by its group or by others: the store holds a job's memory and a
    restore runs what it reads (ssh's StrictModes rule).  Nothing is chmod-ed
    to make it pass; the error says what to run.
    """
    layout = Layout(root)
    if not root.exists():
        if not create:
            raise StoreNotFound(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        make_dir(root)
    elif not root.is_dir():
        raise NotAStore(root, "it is not a directory")
    check_owner(root, root)
    if not layout.config.exists():
        entries = os.listdir(root)
        if not create:
            if entries:
                raise NotAStore(root, "it is not empty and has no config file")
            raise StoreNotFound(root)
        if not all(_is_leftover_of_creation(n) for n in entries):
            raise NotAStore(root, "it is not empty and has no config file")
        _initialize(layout)
    check_permissions(layout)
    config = read_config(layout)
    layout.ensure_dirs()
    return layout, config


def probe_layout(root: Path) -> bool:
    """Whether ``root`` is a store (True) or can become one (False: missing, or an empty directory
    or an interrupted creation); raises what ``open_layout`` would, creating nothing."""
    with os_errors(root):
        if not root.exists():
            return False
        if not root.is_dir():
            raise NotAStore(root, "it is not a directory")
        check_owner(root, root)
        if Layout(root).config.exists():
            return True
        if not all(_is_leftover_of_creation(n) for n in os.listdir(root)):
            raise NotAStore(root, "it is not empty and has no config file")
        return False


def check_permissions(layout: Layout) -> None:
    """UnsafeStore unless the store's directory, config and layout directories are the caller's and
    writable by nobody else."""
    check_owner(layout.root, layout.root)
    check_mode(layout.root, layout.root)
    for path in (layout.config, layout.packs, layout.snapshots, layout.index, layout.locks):
        if path.exists():
            check_owner(layout.root, path)
            check_mode(layout.root, path)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_owner(root: Path, path: Path) -> None:
    """UnsafeStore if ``path`` (of the store at ``root``) is not owned by the effective user."""
    owner = os.stat(path).st_uid
    me = os.geteuid()
    if owner == me:
        return
    what = "it is" if path == root else f"{path} is"
    raise UnsafeStore(root, f"{what} owned by {_user_name(owner)} (uid {owner}), not by you ({_user_name(me)}, "
                            f"uid {me})",
                      f"run incr as {_user_name(owner)}, or take the store over: chown -R {_user_name(me)} {root}")


def check_mode(root: Path, path: Path) -> None:
    """UnsafeStore if ``path`` (of the store at ``root``) is writable by its group or by others."""
    st = os.stat(path)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return
    who = "others" if mode & stat.S_IWOTH else "its group"
    what = "it is" if path == root else f"{path} is"
    want = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
    raise UnsafeStore(root, f"{what} writable by {who} (mode {mode:04o})", f"chmod {want:o} {path}")


def _initialize(layout: Layout) -> None:
    # The user may have made the directory with a permissive umask: it will hold secrets.
    os.chmod(layout.root, DIR_MODE)
    layout.ensure_dirs()
    config = store_pb2.StoreConfig(
        format=STORE_FORMAT,
        version=STORE_VERSION,
        store_id=secrets.token_hex(16),
        digest=DIGEST_NAME,
        page_size=PAGE_SIZE,
        created=time.time(),
    )
    tmp = temp_name(layout.root, _CONFIG_TMP_STEM + secrets.token_hex(8))
    write_durable(tmp, config.SerializeToString(deterministic=True))
    try:
        # link(2) fails if config exists: of two concurrent creators exactly one wins.
        os.link(tmp, layout.config)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    fsync_dir(layout.root)


def upgrade_config(layout: Layout, config: store_pb2.StoreConfig) -> None:
    """Raise a store's version to STORE_VERSION before writing objects older readers would misread.

    Called by a writer holding the lock; the new config replaces the old
    atomically (temporary file, fsync, rename, fsync of the directory).
    """
    if config.version >= STORE_VERSION:
        return
    config.version = STORE_VERSION
    tmp = temp_name(layout.root, _CONFIG_TMP_STEM + secrets.token_hex(8))
    write_durable(tmp, config.SerializeToString(deterministic=True))
    os.rename(tmp, layout.config)
    fsync_dir(layout.root)


def read_config(layout: Layout) -> store_pb2.StoreConfig:
    root = layout.root
    config = store_pb2.StoreConfig()
    try:
        config.ParseFromString(read_file(layout.config))
    except DecodeError:
        raise CorruptStore(root, "its config file does not decode") from None
    if config.format != STORE_FORMAT:
        raise NotAStore(root, "its config file is not an incr store config")
    if config.version > STORE_VERSION:
        raise UnsupportedVersion(root, config.version, STORE_VERSION)
    if config.version < 1:
        raise CorruptStore(root, "its config file has no format version")
    if config.digest != DIGEST_NAME:
        raise UnsupportedStore(root, f"the page digest {config.digest!r}")
    if config.page_size != PAGE_SIZE:
        raise UnsupportedStore(root, f"{config.page_size}-byte pages")
    if re.fullmatch(r"[0-9a-f]{32}", config.store_id) is None:
        raise CorruptStore(root, "its config file has no valid store id")
    return config
