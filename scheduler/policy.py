"""When to checkpoint and when pre-dumps pay: the supervisor's decisions, as plain arithmetic.

Interval: fixed (``--every 10m``), or ``--every auto --mtbf D``: Young's first-order optimum
(Daly's, to first order) sqrt(2 * MTBF * C), C the measured cost of one checkpoint (its total
time, the last one's), re-estimated after each checkpoint.

Pre-dumps: between checkpoints a round copies what the job dirtied since the last pass, so the
next checkpoint's freeze copies only what is written after it.  That pays when the job writes
new pages; it does not when the job rewrites the same pages all the time (every round then finds
as much dirty as a whole interval did: the checkpoint copies it all again, the round was wasted
I/O), nor when it writes so little that the checkpoint's own pre-copy rounds do it
(PredumpGate says when they stop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from incr.errors import UsageError
from incr.timespec import TimeSpecError, parse_duration

#: Until a checkpoint has been measured, --every auto assumes one costs this long (seconds).
ASSUMED_COST = 1.0
#: --every auto never checkpoints more often than this (seconds).
MIN_AUTO_INTERVAL = 1.0
#: Pre-dump rounds per interval (at D/3, 2D/3).
ROUNDS_PER_INTERVAL = 3
REWRITE_FRACTION = 0.8
MOST_PAGES = 0.5
RETRY_AFTER = 10
#: A round finding fewer dirty pages saves the freeze nothing the checkpoint's own pre-copy would not.
FEW_PAGES = 1024


def parse_interval(text: str, what: str = "--every") -> float:
    """A positive duration in seconds; bad input is a UsageError naming the option."""
    try:
        seconds = 0.0 if _is_zero(text) else parse_duration(text)
    except TimeSpecError as exc:
        raise UsageError(f"{what}: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"{what} must be longer than 0 (got {text!r})")
    return seconds


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0
    except ValueError:
        return False


def young_daly(mtbf: float, cost: float) -> float:
    """The checkpoint interval that minimises lost work plus checkpoint time, to first order."""
    return max(MIN_AUTO_INTERVAL, math.sqrt(2.0 * mtbf * max(cost, 1e-3)))


@dataclass
class Interval:
    """The checkpoint interval now: fixed, or from the failure rate and the measured cost."""

    fixed: float = 0.0          # seconds; 0: automatic
    mtbf: float = 0.0
    cost: float = ASSUMED_COST  # seconds, the last checkpoint's total time (auto only)

    @classmethod
    def parse(cls, every: str, mtbf: str | None) -> Interval:
        if every.strip().lower() == "auto":
            if mtbf is None:
                raise UsageError("--every auto needs --mtbf D, the mean time between failures (e.g. 24h)")
            return cls(mtbf=parse_interval(mtbf, "--mtbf"))
        if mtbf is not None:
            raise UsageError("--mtbf goes with --every auto only")
        return cls(fixed=parse_interval(every))

    @property
    def auto(self) -> bool:
        return not self.fixed

    def seconds(self) -> float:
        return self.fixed or young_daly(self.mtbf, self.cost)

    def measured(self, total_seconds: float) -> None:
        """A checkpoint took this long: the next interval (auto) follows."""
        self.cost = total_seconds

    def describe(self) -> str:
        if self.fixed:
            return f"every {self.fixed:g} s"
        return f"every {self.seconds():.1f} s (auto: sqrt(2 x MTBF {self.mtbf:g} s x cost {self.cost:.3f} s))"


@dataclass
class PredumpGate:
    """Whether pre-dump rounds pay, from what checkpoints and rounds found dirty.

    `baseline` is the dirty count of the last checkpoint taken with no round in its interval:
    what an interval dirties.  Rounds stop when one finds most of the job's pages dirty, when
    the first round after a round-less checkpoint finds REWRITE_FRACTION of the baseline in a
    fraction of the interval, or when a checkpoint after rounds still copies that much; they are
    tried again after RETRY_AFTER checkpoints (the job may have changed its ways)."""

    enabled: bool = True
    baseline: int = 0
    rounds: int = 0                 # since the last checkpoint
    off_since: int = 0              # checkpoints taken since the rounds stopped

    def due(self, checkpoints: int) -> bool:
        """Whether a round should run now (never before the first checkpoint: its own pre-copy
        rounds do that work)."""
        return self.enabled and checkpoints > 0

    def after_round(self, dirty: int, total: int) -> str:
        """Record a round; a reason when rounds stop ("" while they pay)."""
        first = self.rounds == 0
        self.rounds += 1
        if dirty < FEW_PAGES:
            return self._stop(f"a pre-dump round found only {dirty} pages dirty: the checkpoint's own pre-copy "
                              "does that much")
        if total and dirty >= MOST_PAGES * total:
            return self._stop(f"a pre-dump round found {dirty} of the job's {total} pages dirty")
        if first and self.baseline and dirty >= REWRITE_FRACTION * self.baseline:
            return self._stop(f"a pre-dump round found {dirty} pages dirty in a part of the interval, as many as "
                              f"a whole interval ({self.baseline})")
        return ""

    def after_checkpoint(self, dirty: int) -> str:
        """Record a checkpoint's dirty count; a reason when rounds stop ("" otherwise)."""
        had_rounds, self.rounds = self.rounds > 0, 0
        if not had_rounds:
            self.baseline = dirty
            if not self.enabled:
                self.off_since += 1
                if self.off_since >= RETRY_AFTER:
                    self.enabled, self.off_since = True, 0
            return ""
        if self.enabled and self.baseline and dirty >= REWRITE_FRACTION * self.baseline:
            return self._stop(f"the checkpoint after pre-dump rounds still copied {dirty} pages (without them: "
                              f"{self.baseline}): the job rewrites the same pages")
        return ""

    def _stop(self, why: str) -> str:
        self.enabled, self.off_since = False, 0
        return why
