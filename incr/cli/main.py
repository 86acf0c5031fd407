"""`incr` command line: parsing, dispatch, and the one place errors become
one-line messages and exit codes (2: bad usage, 1: failure, 130: Ctrl-C)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from incr import __version__
from incr.cli import (
    bench_cmd,
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
from incr.cli.progress import ClearsProgress
from incr.errors import Error, UsageError
from incr.jobstate import remove_stale_records

COMMANDS = (run_cmd, checkpoint_cmd, predump_cmd, list_cmd, inspect_cmd, restore_cmd, verify_cmd, forget_cmd, prune_cmd,
            repair_cmd, check_cmd, bench_cmd)

DESCRIPTION = """\
Incremental checkpoint/restore of running Linux processes.

Every command works on a store directory: --store DIR (before or after the
command), or the INCR_STORE environment variable.  Run `incr COMMAND --help`
for each command.  Exit status: 0 done, 1 failed, 2 bad usage (an unknown
checkpoint id too), 130 interrupted (Ctrl-C)."""

STORE_HELP = "checkpoint store directory (default: $INCR_STORE)"

STORE_EPILOG = """\
The store: --store DIR, before or after the command name (`incr --store DIR
{name}` or `incr {name} --store DIR`), or else the INCR_STORE environment
variable{now}."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    parser = Parser(prog="incr", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"incr {__version__}")
    parser.add_argument("--store", metavar="DIR", default=os.environ.get("INCR_STORE"), help=STORE_HELP)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    for name, command in sub.choices.items():
        if command.get_default("needs_store") is not False or command.get_default("takes_store"):
            add_store_option(name, command)
    return parser


def add_store_option(name: str, command: argparse.ArgumentParser) -> None:
    """--store after the command name too; SUPPRESS leaves the one given before it (or $INCR_STORE)
    in place when it is not repeated here."""
    command.add_argument("--store", metavar="DIR", default=argparse.SUPPRESS, help=STORE_HELP)
    env = os.environ.get("INCR_STORE")
    now = f" (now {env})" if env else " (not set now)"
    epilog = STORE_EPILOG.format(name=name, now=now)
    command.epilog = f"{command.epilog}\n\n{epilog}" if command.epilog else epilog
    if command.formatter_class is argparse.HelpFormatter:
        command.formatter_class = argparse.RawDescriptionHelpFormatter


def main(argv: Sequence[str] | None = None) -> NoReturn:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("incr: interrupted", file=sys.stderr)
        sys.exit(130)
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
                        format="incr: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(ClearsProgress())
    if args.command is None:
        parser.print_help(sys.stderr)
        sys.exit(2)
    try:
        remove_stale_records()          # housekeeping: records of processes gone since the last command
        if not args.store and getattr(args, "needs_store", True):
            raise UsageError(f"no store given: pass --store DIR (e.g. `incr {args.command} --store DIR`) "
                             "or set INCR_STORE")
        code = args.func(args)
    except Error as exc:
        # Every error of incr's (incr.Error): usage errors and unknown checkpoint ids exit 2, the rest 1.
        print(f"incr {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
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
