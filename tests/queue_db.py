"""Queue databases for the tests: SQLite always, PostgreSQL where CI's server is there (a pytest plugin: ``db_url``)."""
from __future__ import annotations

import os

import pytest

from iblvideo.sessions.queue import Queue
from iblvideo.sessions.queue.db import Base

POSTGRES = os.environ.get("IBLVIDEO_TEST_POSTGRES")
SKIP_POSTGRES = pytest.mark.skipif(not POSTGRES, reason="IBLVIDEO_TEST_POSTGRES is not set (CI's .ci/run starts a PostgreSQL server and sets it)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=SKIP_POSTGRES)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty queue database of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "queue.sqlite")
    assert POSTGRES is not None
    queue = Queue(POSTGRES)
    Base.metadata.drop_all(queue.engine)
    queue.close()
    return POSTGRES
