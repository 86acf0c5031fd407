"""Errors of the engine layer.  The CLI turns each into one line and an exit code."""

from __future__ import annotations

from incr.errors import Error


class EngineError(Error):
    """Base of every engine failure; str(exc) is the one-line message for users."""


class ProcessNotFound(EngineError):
    def __init__(self, pid: int) -> None:
        super().__init__(f"no process with PID {pid} (check the PID with `ps -p {pid}`)")
        self.pid = pid


class NotTraceable(EngineError):
    def __init__(self, pid: int, why: str) -> None:
        super().__init__(f"cannot checkpoint PID {pid}: {why}")
        self.pid = pid


class Unsupported(EngineError):
    """A resource incr cannot checkpoint yet: the message names pid and resource."""

    def __init__(self, pid: int, what: str, why: str) -> None:
        super().__init__(f"cannot checkpoint PID {pid}: {what}: {why}")
        self.pid = pid
        self.what = what
        self.why = why


class ProcessVanished(EngineError):
    def __init__(self, pid: int, during: str) -> None:
        super().__init__(f"PID {pid} exited while {during}")
        self.pid = pid


class RemoteSyscallFailed(EngineError):
    def __init__(self, pid: int, name: str, errno_: int) -> None:
        import os

        super().__init__(f"PID {pid}: injected {name}() failed: {os.strerror(errno_)}")
        self.pid = pid
        self.errno = errno_


class RestoreError(EngineError):
    """Restore cannot proceed; nothing of the job is left behind."""


class PidTaken(RestoreError):
    """A PID of the job is held by an unrelated process (JobStillRunning when it is the job's)."""

    def __init__(self, pid: int, holder: str, remedy: str = "") -> None:
        super().__init__(
            f"cannot restore: PID {pid} is in use by {holder}; {remedy or f'end that process (kill {pid})'} "
            "and run restore again, or restore with --new-pidns"
        )
        self.pid = pid


class JobStillRunning(RestoreError):
    """The checkpointed job itself (or a restored copy of it) runs: a restore would start a second copy."""

    def __init__(self, pid: int, holder: str, how: str) -> None:
        super().__init__(f"cannot restore: the job is still running: {holder} {how}; end it first "
                         f"(kill {pid}), then run restore again")
        self.pid = pid
