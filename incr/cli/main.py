"""`incr` command line: parsing, dispatch, and the one place errors become
one-line messages and exit codes (2: bad usage, 1: failure)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from incr import __version__
from incr.cli import (
    check_cmd,
    checkpoint_cmd,
    forget_cmd,
    inspect_cmd,
    list_cmd,
    predump_cmd,
    prune_cmd,
    repair_cmd,
    restore_cmd,
    run_cmd,
    verify_cmd,
)
from incr.engine.errors import EngineError
from incr.errors import IncrError, UsageError
from incr.jobstate import remove_stale_records
from incr.pagestore import StoreError
from incr.timespec import TimeSpecError

COMMANDS = (run_cmd, checkpoint_cmd, predump_cmd, list_cmd, inspect_cmd, restore_cmd, verify_cmd, forget_cmd, prune_cmd,
            repair_cmd, check_cmd)

DESCRIPTION = """\
Incremental checkpoint/restore of running Linux processes.

Every command works on a store directory: --store DIR, or the INCR_STORE
environment variable.  Run `incr COMMAND --help` for each command."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    parser = Parser(prog="incr", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"incr {__version__}")
    parser.add_argument("--store", metavar="DIR", default=os.environ.get("INCR_STORE"),
                        help="checkpoint store directory (default: $INCR_STORE)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
                        format="incr: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        sys.exit(2)
    remove_stale_records()          # housekeeping: records of processes gone since the last command
    try:
        if not args.store and getattr(args, "needs_store", True):
            raise UsageError("no store given: pass --store DIR or set INCR_STORE")
        code = args.func(args)
    except UsageError as exc:
        print(f"incr {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except TimeSpecError as exc:
        print(f"incr {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (IncrError, EngineError, StoreError) as exc:
        print(f"incr {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error of incr's.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:
        print(f"incr {args.command}: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:
        # One the layers did not turn into an error of their own (a process vanishing under a
        # /proc read, a disk): one line all the same, never a traceback.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"incr {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code)
