"""Optional dependencies: imports that need an extra of ``pip install iblvideo[...]``.

The core install tracks videos; sessions through ONE, the task queue, figures and the export formats
each come with an extra. Their imports run inside ``needs_extra`` so that a missing package is one
line naming the extra that brings it, rather than a traceback ending in ``No module named 'one'``::

    with needs_extra("sessions"):
        from one.api import One
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from iblvideo.errors import IblVideoError

# the distribution, as pip spells it, that brings each top-level module an extra holds
DISTRIBUTIONS = {
    "one": "ONE-api",
    "sqlalchemy": "SQLAlchemy",
    "distributed": "dask[distributed]",
    "dask": "dask[distributed]",
    "psycopg": "psycopg[binary]",
    "matplotlib": "matplotlib",
    "tables": "tables (PyTables)",
    "pynwb": "pynwb",
    "ndx_events": "ndx-events",
    "ndx_pose": "ndx-pose",
}


# both bases keep a ``path``: IblVideoError's (None here, no file is at fault) is the one used
class MissingExtra(IblVideoError, ImportError):  # type: ignore[misc]
    """An optional package that is not installed; the message names the extra that brings it."""

    def __init__(self, distribution: str, extra: str):
        self.distribution = distribution
        self.extra = extra
        super().__init__(None, f"{distribution} is not installed: {self.install}")

    @property
    def install(self) -> str:
        return f"pip install 'iblvideo[{self.extra}]'"

    def needed_by(self, user: str) -> str:
        """The message naming what needs the package, e.g. ``'iblvideo session' needs ONE-api: pip install ...``."""
        return f"{user} needs {self.distribution}: {self.install}"


@contextlib.contextmanager
def needs_extra(extra: str) -> Iterator[None]:
    """Turn the failed import of a package that ``extra`` brings into ``MissingExtra``.

    Only the modules of ``DISTRIBUTIONS`` count: any other missing module is a broken install, and
    its error is left as it is.
    """
    try:
        yield
    except ModuleNotFoundError as err:
        distribution = DISTRIBUTIONS.get((err.name or "").partition(".")[0])
        if distribution is None:
            raise
        raise MissingExtra(distribution, extra) from None
