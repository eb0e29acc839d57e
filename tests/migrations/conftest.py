"""The migration tests' empty database: a SQLite file, or a PostgreSQL database made beside the
suite's own for the test module (and dropped after)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url


@pytest.fixture
def url(engine, tmp_path, request) -> Iterator[str]:
    """An empty database of the suite's kind, named after the module (test_0004_… → _mig0004)."""
    if engine.dialect.name != "postgresql":
        yield f"sqlite:///{tmp_path / 'mig.db'}"
        return
    name = f"{engine.url.database}_mig{request.module.__name__.rsplit('.', 1)[-1][5:9]}"
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(os.environ["DATABASE_URL"]).set(database=name).render_as_string(
        hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
