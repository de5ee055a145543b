"""The one exception type users see: a one-line message naming the file and the problem."""
from __future__ import annotations

from pathlib import Path


class IblVideoError(Exception):
    """A problem with the user's input, reported as one line; the CLI exits non-zero on it."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        # a URL as given: as a Path, its "//" would collapse ("https:/host/...")
        where = path if isinstance(path, str) and "://" in path else self.path
        super().__init__(f"{where}: {problem}" if where is not None else problem)


class VideoError(IblVideoError):
    """A video that is missing, unreadable, empty, truncated or corrupt."""


class BadArgument(IblVideoError, ValueError):
    """An argument that cannot be right (a batch size of 0, an unknown device); also a ValueError."""
