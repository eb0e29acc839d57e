import pytest

from models.settings import SettingsError, load_settings


def test_production_refuses_placeholder_secrets(tmp_path):
    env = {"SCANBOOK_ENV": "production", "SCANBOOK_SECRET": "changeme",
           "SCANBOOK_ADMIN_TOKEN": "x" * 40, "REDIS_URL": "redis://127.0.0.1:6379/0",
           "SCANBOOK_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="SCANBOOK_SECRET"):
        load_settings(env)
    env["SCANBOOK_SECRET"] = "s" * 40
    assert load_settings(env).production


def test_development_generates_and_keeps_secrets(tmp_path):
    env = {"SCANBOOK_DATA_DIR": str(tmp_path)}
    first = load_settings(env)
    again = load_settings(env)
    assert first.admin_token == again.admin_token and len(first.admin_token) >= 32
    assert first.database_url == f"sqlite:///{tmp_path / 'scanbook.db'}"
    assert first.redis_url is None
