"""Web Push delivery (RFC 8030, 8291, 8292) with pywebpush: the server's VAPID keys and one
POST to a push service (docs/push.md).

The VAPID key pair is made on first start into the data dir (`vapid_private.pem`, 0600) and
read from there afterwards, by the web process (which serves the public key to the pages)
and by the workers (which sign with the private key). Every browser subscription is bound to
that public key: a new key pair makes every subscription fail, so the file is kept.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

log = logging.getLogger("scanbook.push")

KEY_FILE = "vapid_private.pem"
TIMEOUT = (3.05, 10)  # connect, read: a push service that hangs costs a job this much at most


@dataclass(frozen=True)
class VapidKeys:
    vapid: Vapid
    public_key: str  # the browser's applicationServerKey: base64url, uncompressed P-256 point


def _keys(vapid: Vapid) -> VapidKeys:
    point = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return VapidKeys(vapid, base64.urlsafe_b64encode(point).decode().rstrip("="))


def load_keys(data_dir: Path) -> VapidKeys:
    """The VAPID keys of this data dir, made on first use. Two processes starting at once
    (web and worker) both end with the same file: the key is written to a private temporary
    file and linked into place, and the one whose link fails reads the other's."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fresh = Vapid()
        fresh.generate_keys()
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(fresh.private_pem())
            try:
                os.link(tmp, path)
                log.info("VAPID keys made in %s", path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    return _keys(Vapid.from_pem(path.read_bytes()))


class Outcome(StrEnum):
    SENT = "sent"
    GONE = "gone"  # 404/410: the subscription has ended; forget it
    RETRY = "retry"  # the service is busy or away: try again later
    FAILED = "failed"  # refused for good (4xx): retrying cannot help


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: int | None = None
    retry_after: int | None = None


def session() -> requests.Session:
    """A session to reuse across one job's sends (keep-alive to the push service)."""
    made = requests.Session()
    made.max_redirects = 0  # a push service answers; it never sends us elsewhere
    return made


def send(http: requests.Session, *, endpoint: str, p256dh: str, auth: str,
         data: bytes, keys: VapidKeys, subject: str, ttl: int, urgency: str,
         topic: str | None = None) -> Result:
    """Encrypt `data` for one subscription (aes128gcm) and POST it, signed with VAPID."""
    headers = {"Urgency": urgency}
    if topic:
        headers["Topic"] = topic  # the push service keeps only the newest undelivered one
    try:
        webpush({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                data=data, vapid_private_key=keys.vapid, vapid_claims={"sub": subject},
                ttl=ttl, headers=headers, timeout=TIMEOUT,
                requests_session=http)
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        result = _classify(status, exc.response)
        if result.outcome is not Outcome.GONE:
            log.warning("push to %s answered %s", _host(endpoint), status)
        return result
    except requests.RequestException as exc:  # no answer: connection, timeout, redirect
        log.warning("push to %s failed: %s", _host(endpoint), type(exc).__name__)
        return Result(Outcome.RETRY)
    return Result(Outcome.SENT, 201)


def _classify(status: int | None, response) -> Result:
    if status in (404, 410):
        return Result(Outcome.GONE, status)
    if status is None or status == 429 or status >= 500:
        after = response.headers.get("Retry-After") if response is not None else None
        return Result(Outcome.RETRY, status, int(after) if after and after.isdigit() else None)
    return Result(Outcome.FAILED, status)


def _host(endpoint: str) -> str:
    """The push service's host, for logs (the endpoint's path is the subscription's secret)."""
    return endpoint.split("/")[2] if endpoint.count("/") >= 2 else "?"
