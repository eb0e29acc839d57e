import base64
import os

import pytest

from models.settings import SettingsError, load_settings

KEY = base64.b64encode(os.urandom(32)).decode()


def test_production_refuses_placeholder_secrets(tmp_path):
    env = {"SCANBOOK_ENV": "production", "SCANBOOK_SECRET": "changeme",
           "SCANBOOK_ADMIN_TOKEN": "x" * 40, "REDIS_URL": "redis://127.0.0.1:6379/0",
           "SCANBOOK_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="SCANBOOK_SECRET"):
        load_settings(env)
    env["SCANBOOK_SECRET"] = "s" * 40
    for placeholder in ("", "changeme", "short"):
        env["SCANBOOK_ITINERARY_SECRET"] = placeholder
        with pytest.raises(SettingsError, match="SCANBOOK_ITINERARY_SECRET"):
            load_settings(env)
    env["SCANBOOK_ITINERARY_SECRET"] = "i" * 40
    with pytest.raises(SettingsError, match="SCANBOOK_DATA_KEY must be set"):
        load_settings(env)
    env["SCANBOOK_DATA_KEY"] = KEY
    settings = load_settings(env)
    assert settings.production and settings.data_keys == {1: base64.b64decode(KEY)}
    assert KEY not in repr(settings) and "i" * 40 not in repr(settings)


@pytest.mark.parametrize("bad", ["changeme", base64.b64encode(b"short").decode(),
                                 base64.b64encode(b"\0" * 32).decode(), "not base64 !!" * 4])
def test_data_key_must_be_32_random_bytes_in_base64(bad):
    with pytest.raises(SettingsError, match="SCANBOOK_DATA_KEY must be base64"):
        load_settings({"SCANBOOK_DATA_KEY": bad, "SCANBOOK_SECRET": "s" * 40,
                       "SCANBOOK_ADMIN_TOKEN": "x" * 40})


def test_data_key_versions():
    raw1, raw2 = os.urandom(32), os.urandom(48)
    env = {"SCANBOOK_SECRET": "s" * 40, "SCANBOOK_ADMIN_TOKEN": "x" * 40,
           "SCANBOOK_DATA_KEY": base64.urlsafe_b64encode(raw1).decode().rstrip("="),
           "SCANBOOK_DATA_KEY_V2": base64.b64encode(raw2).decode()}
    assert load_settings(env).data_keys == {1: raw1, 2: raw2}
    del env["SCANBOOK_DATA_KEY"]
    with pytest.raises(SettingsError, match="key version 1"):
        load_settings(env)
    env.update(SCANBOOK_DATA_KEY=KEY, SCANBOOK_DATA_KEY_V1=KEY)
    with pytest.raises(SettingsError, match="2-255"):
        load_settings(env)


def test_development_generates_and_keeps_secrets(tmp_path):
    env = {"SCANBOOK_DATA_DIR": str(tmp_path)}
    first = load_settings(env)
    again = load_settings(env)
    assert first.admin_token == again.admin_token and len(first.admin_token) >= 32
    assert first.itinerary_secret == again.itinerary_secret
    assert len(first.itinerary_secret) >= 32 and first.itinerary_secret != first.secret
    assert first.database_url == f"sqlite:///{tmp_path / 'scanbook.db'}"
    assert first.redis_url is None


def test_public_url_follows_the_listening_address():
    from models.settings import is_loopback_url, public_url_for

    assert public_url_for("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert public_url_for("192.168.1.20", 9000) == "http://192.168.1.20:9000"
    assert public_url_for("0.0.0.0", 8080, "10.0.0.7") == "http://10.0.0.7:8080"
    assert public_url_for("::", 8080, None) == "http://127.0.0.1:8080"  # no network: loopback
    assert public_url_for("fe80::1", 80) == "http://[fe80::1]:80"
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:80",
                "http://127.8.9.10"):
        assert is_loopback_url(url), url
    for url in ("http://10.0.0.7:8080", "https://scan.example.cn", "http://[fe80::1]:80"):
        assert not is_loopback_url(url), url


def test_invitation_days(tmp_path):
    env = {"SCANBOOK_DATA_DIR": str(tmp_path)}
    assert load_settings(env).invitation_days == 7
    assert load_settings({**env, "SCANBOOK_INVITATION_DAYS": "30"}).invitation_days == 30
    for bad in ("0", "-1", "7.5", "a week", ""):
        with pytest.raises(SettingsError, match="SCANBOOK_INVITATION_DAYS"):
            load_settings({**env, "SCANBOOK_INVITATION_DAYS": bad})
