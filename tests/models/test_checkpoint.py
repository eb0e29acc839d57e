"""models.db.checkpoint: the background WAL checkpoint copies the log and rewinds a long one."""

from __future__ import annotations

import sqlite3

import pytest

from models import db
from models.db import checkpoint, make_engine


def _log_frames(engine) -> int:
    """Frames in the write-ahead log now (a PASSIVE checkpoint reports them)."""
    with engine.connect() as conn:
        _busy, frames, _copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return frames


def _write(engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t (blob) SELECT randomblob(3000) FROM "
                             f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                             f"WHERE i < {rows}) SELECT i FROM n)")


@pytest.fixture
def wal_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)")
    yield engine
    engine.dispose()


def test_backstop_sits_well_above_the_restart_point():
    # A commit that crosses the backstop checkpoints inside the batch (fsyncs and all): the
    # background RESTART must always come first, with room for a round's frames (0.2 s of
    # ~8,000 frames a second) and a RESTART that had to wait.
    assert db.SQLITE_AUTOCHECKPOINT_PAGES >= 2 * db.SQLITE_RESTART_PAGES


def test_a_long_log_starts_over_after_the_checkpoint(wal_engine, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_RESTART_PAGES", 40)
    _write(wal_engine, 100)  # ~100 pages of blobs
    assert _log_frames(wal_engine) > 40
    checkpoint(wal_engine)  # past the restart point: RESTART
    _write(wal_engine, 2)
    assert _log_frames(wal_engine) < 10  # the next write began the log anew
    with wal_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 102


def test_a_restart_that_finds_a_batch_writing_gives_up_and_loses_nothing(
        wal_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_RESTART_PAGES", 40)
    monkeypatch.setattr(db, "RESTART_WAIT_MS", 50)
    _write(wal_engine, 100)
    writer = sqlite3.connect(tmp_path / "wal.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a batch in the middle of its transaction
        writer.execute("INSERT INTO t (blob) VALUES (x'00')")
        checkpoint(wal_engine)  # RESTART cannot have the write lock: it waits, then gives up
        writer.execute("COMMIT")
    finally:
        writer.close()
    with wal_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 101
        # and the checkpoint connection's own busy timeout is back to the usual
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == (
            db.SQLITE_BUSY_SECONDS * 1000)
