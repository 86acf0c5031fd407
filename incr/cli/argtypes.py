"""Argument types shared by the commands: each refuses a bad value in argparse's one line."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {n})")
    return n


def _finite(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds (got {text})")
    return x


def positive_seconds(text: str) -> float:
    """Seconds, more than 0."""
    x = _finite(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {text})")
    return x


def seconds(text: str) -> float:
    """Seconds, 0 or more."""
    x = _finite(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must not be negative (got {text})")
    return x
