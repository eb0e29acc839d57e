"""One typed settings object, read from the environment (and a `.env` file if present)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "development", "please-change"}


class SettingsError(RuntimeError):
    """Configuration that must not be used (for example a placeholder secret in production)."""


def _load_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    database_url: str
    redis_url: str | None
    secret: str
    admin_token: str
    public_url: str
    retention_days: int
    itinerary_url: str
    scan_rate_per_min: int
    proxy_check_rate_per_min: int
    # "module:factory" of the SMS gateway that sends sign-in codes (web/otp.py); empty: the
    # development gateway (the code goes to the server log) outside production.
    sms_gateway: str = ""

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _persisted_secret(data_dir: Path, name: str) -> str:
    """A development secret generated once and kept in the data dir, so restarts keep sessions."""
    path = data_dir / name
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings; refuse placeholder secrets when SCANBOOK_ENV=production."""
    env = dict(_load_dotenv(Path(".env")))
    env.update(os.environ if environ is None else environ)
    mode = env.get("SCANBOOK_ENV", "development")
    data_dir = Path(env.get("SCANBOOK_DATA_DIR", "var")).resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'scanbook.db'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    secret = env.get("SCANBOOK_SECRET", "")
    admin_token = env.get("SCANBOOK_ADMIN_TOKEN", "")
    if mode == "production":
        for name, value in (("SCANBOOK_SECRET", secret), ("SCANBOOK_ADMIN_TOKEN", admin_token)):
            if value.lower() in _PLACEHOLDERS or len(value) < 16:
                raise SettingsError(
                    f"{name} must be set to a real secret (16+ chars) in production"
                )
        if not env.get("REDIS_URL"):
            raise SettingsError("REDIS_URL must be set in production")
    if not secret:
        secret = _persisted_secret(data_dir, "secret")
    if not admin_token:
        admin_token = _persisted_secret(data_dir, "admin_token")
    return Settings(
        env=mode,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=env.get("REDIS_URL") or None,
        secret=secret,
        admin_token=admin_token,
        public_url=env.get("SCANBOOK_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        retention_days=int(env.get("SCANBOOK_RETENTION_DAYS", "28")),
        itinerary_url=env.get("SCANBOOK_ITINERARY_URL", "https://xc.caict.ac.cn/"),
        scan_rate_per_min=int(env.get("SCANBOOK_SCAN_RATE_PER_MIN", "30")),
        proxy_check_rate_per_min=int(env.get("SCANBOOK_PROXY_CHECK_RATE_PER_MIN", "10")),
        sms_gateway=env.get("SCANBOOK_SMS_GATEWAY", ""),
    )
