"""The root of every error incr raises, and the errors of the incr layer (above engine and
pagestore).

``incr.Error`` is the one base a program catches: EngineError (engine/errors.py), StoreError
(incr/pagestore/errors.py) and IncrError all derive from it.  This module imports nothing of
incr's, so that those layers can derive from it without an import cycle.  Each class carries the
exit code the command line gives it: 2 for bad usage (an unknown checkpoint id, a malformed
time), 1 for failures.
"""

from __future__ import annotations

from typing import ClassVar


class Error(Exception):
    """Base of every error incr raises; str(exc) is a one-line message for users."""

    exit_code: ClassVar[int] = 1


class IncrError(Error):
    """A failure explained in one line (str(exc)); exit code 1."""


class UsageError(IncrError):
    """The command line asks for something impossible; exit code 2."""

    exit_code = 2
