"""Errors of the incr layer (above engine and pagestore), and the exit codes
the command line gives every error family."""

from __future__ import annotations


class IncrError(Exception):
    """A failure explained in one line (str(exc)); exit code 1."""

    exit_code = 1


class UsageError(IncrError):
    """The command line asks for something impossible; exit code 2."""

    exit_code = 2
