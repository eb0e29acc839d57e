"""Apply the Alembic migrations (used by `scanbook serve`, `scanbook migrate` and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine


def alembic_config(url: str) -> Config:
    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
