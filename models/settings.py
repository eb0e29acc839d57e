"""One typed settings object, read from the environment (and a `.env` file if present)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
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
    # "module:factory" of the SMS gateway (sign-in codes and status notices: realtime/sms.py);
    # empty: the development gateway (messages go to the server log) outside production.
    sms_gateway: str = ""
    # Key material for ID numbers at rest, by version (models/crypto.py): SCANBOOK_DATA_KEY is
    # version 1, SCANBOOK_DATA_KEY_V2… later ones. Empty outside production when unset: the
    # keys are then derived from `secret`.
    data_keys: dict[int, bytes] = field(default_factory=dict, repr=False)
    # A registrar's proxy check-ins a minute, and co-registrar invitations an hour, per
    # registrar: each answer tells something about a person, so neither may be a sweep.
    proxy_checkin_rate_per_min: int = 20
    invite_rate_per_hour: int = 20
    # Days an invitation to be a co-registrar can be accepted (models/registrars.py): a
    # forgotten one must not hand a venue's check-ins to someone months later.
    invitation_days: int = 7
    # The itinerary platform signs its callbacks with it (models/itinerary.py).
    itinerary_secret: str = field(default="", repr=False)
    # Web Push (docs/push.md): the VAPID `sub` claim push services may contact us at, and the
    # hosts a subscription's endpoint may name (the server POSTs to it: no other host).
    vapid_subject: str = "mailto:scanbook@localhost"
    push_hosts: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.env == "production"


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


_DATA_KEY_VERSION = re.compile(r"SCANBOOK_DATA_KEY_V([0-9]+)$")
_MIN_KEY_BYTES = 32


def _data_key(name: str, value: str) -> bytes:
    """A base64 key of 32+ bytes that is not a placeholder (any environment: a malformed key
    would otherwise surface later as unreadable data)."""
    value = value.strip()
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if value.lower() in _PLACEHOLDERS or len(key) < _MIN_KEY_BYTES or len(set(key)) < 8:
        raise SettingsError(f"{name} must be base64 of {_MIN_KEY_BYTES}+ random bytes "
                            "(openssl rand -base64 32)")
    return key


def _data_keys(env: dict[str, str]) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    if env.get("SCANBOOK_DATA_KEY"):
        keys[1] = _data_key("SCANBOOK_DATA_KEY", env["SCANBOOK_DATA_KEY"])
    for name, value in env.items():
        match = _DATA_KEY_VERSION.match(name)
        if match and value:
            version = int(match.group(1))
            if not 2 <= version <= 255:
                raise SettingsError(f"{name}: key versions are 2-255 (1 is SCANBOOK_DATA_KEY)")
            keys[version] = _data_key(name, value)
    if keys and 1 not in keys:
        raise SettingsError("SCANBOOK_DATA_KEY (key version 1) is required with "
                            "SCANBOOK_DATA_KEY_V<n>: the look-up hash is keyed by it")
    return keys


ALL_INTERFACES = ("0.0.0.0", "::", "")


def public_url_for(host: str, port: int, lan_address: str | None = None) -> str:
    """The base the QR codes point at when SCANBOOK_PUBLIC_URL is unset: where
    `scanbook serve --host/--port` listens. Listening on every interface, that is this
    machine's address on its network (`lan_address`, what a phone on the same network
    reaches), else loopback."""
    if host in ALL_INTERFACES:
        host = lan_address or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def is_loopback_url(url: str) -> bool:
    """True when the URL names this machine only (a phone cannot open it)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The browsers' push services (a subscription's endpoint is on one of these or a subdomain).
PUSH_HOSTS = ("fcm.googleapis.com", "android.googleapis.com", "push.services.mozilla.com",
              "notify.windows.com", "push.apple.com")


def _vapid_subject(env: dict[str, str]) -> str:
    """The public site when it is https (push services accept an https URL or a mailto:)."""
    url = env.get("SCANBOOK_PUBLIC_URL", "")
    return url.rstrip("/") if url.startswith("https://") else "mailto:scanbook@localhost"


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
    itinerary_secret = env.get("SCANBOOK_ITINERARY_SECRET", "")
    if mode == "production":
        for name, value in (("SCANBOOK_SECRET", secret), ("SCANBOOK_ADMIN_TOKEN", admin_token),
                            ("SCANBOOK_ITINERARY_SECRET", itinerary_secret)):
            if value.lower() in _PLACEHOLDERS or len(value) < 16:
                raise SettingsError(
                    f"{name} must be set to a real secret (16+ chars) in production"
                )
        if not env.get("REDIS_URL"):
            raise SettingsError("REDIS_URL must be set in production")
        if not env.get("SCANBOOK_DATA_KEY"):
            raise SettingsError("SCANBOOK_DATA_KEY must be set in production (base64 of 32+ "
                                "random bytes: openssl rand -base64 32)")
    data_keys = _data_keys(env)
    if not secret:
        secret = _persisted_secret(data_dir, "secret")
    if not admin_token:
        admin_token = _persisted_secret(data_dir, "admin_token")
    if not itinerary_secret:
        itinerary_secret = _persisted_secret(data_dir, "itinerary_secret")
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
        data_keys=data_keys,
        proxy_checkin_rate_per_min=int(env.get("SCANBOOK_PROXY_CHECKIN_RATE_PER_MIN", "20")),
        invite_rate_per_hour=int(env.get("SCANBOOK_INVITE_RATE_PER_HOUR", "20")),
        invitation_days=_positive(env, "SCANBOOK_INVITATION_DAYS", 7),
        itinerary_secret=itinerary_secret,
        vapid_subject=env.get("SCANBOOK_VAPID_SUBJECT") or _vapid_subject(env),
        push_hosts=tuple(h.strip().lower() for h in env.get(
            "SCANBOOK_PUSH_HOSTS", ",".join(PUSH_HOSTS)).split(",") if h.strip()),
    )


def _positive(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not raw.strip().isdigit() or int(raw) < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)
