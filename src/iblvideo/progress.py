"""Logging set-up and progress bars, both silenced by ``--quiet``."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
_quiet = False


def configure(quiet: bool = False, verbose: bool = False) -> None:
    """Route iblvideo's log records to stderr; quiet shows warnings only and hides progress bars.

    For the command line only: a library call changes no logging level. The logger passes INFO even
    when quiet, for the task logs that queue workers keep; the console handler is what stays quiet.
    """
    global _quiet
    _quiet = quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.WARNING if quiet else logging.NOTSET)
    logger = logging.getLogger("iblvideo")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Wrap ``items`` in a progress bar unless quiet; the bar appears only after a second."""
    return iter(tqdm(items, total=total, desc=desc, unit=unit, disable=_quiet, delay=1.0, leave=False, dynamic_ncols=True))


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it") -> tqdm:
    """A manually advanced progress bar (``bar.update(n)``) with the same quiet rule."""
    return tqdm(total=total, desc=desc, unit=unit, disable=_quiet, delay=1.0, leave=False, dynamic_ncols=True)
