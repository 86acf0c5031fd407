"""Re-export for tests: the engine's view of a process tree."""

from incr.engine.tree import descendants

__all__ = ["descendants"]
