"""Dirty-page trackers: which pages a checkpoint copies while the job is frozen.

A tracker maps the frozen process's VMAs to the page runs worth copying.
``PresentPages`` copies every page holding data of the job's own (a full
checkpoint); it needs nothing but PAGEMAP_SCAN and is always correct.
"""

from __future__ import annotations

from typing import Protocol

from incr.engine.memory import PageRun, plan_pages
from incr.proto import image_pb2


class Tracker(Protocol):
    name: str

    def plan(self, pid: int, vmas: list[image_pb2.Vma]) -> list[PageRun]:
        """Page runs to copy from the frozen process `pid`."""
        ...


class PresentPages:
    """Every present or swapped anonymous page and every copied-on-write file page."""

    name = "full"

    def plan(self, pid: int, vmas: list[image_pb2.Vma]) -> list[PageRun]:
        return plan_pages(pid, vmas)
