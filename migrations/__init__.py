"""Alembic migrations: the schema is created and evolved only through these."""
