"""A local Web Push service for tests, and a browser's side of a subscription.

`PushService` is a real HTTP server (a thread) that takes what a push service takes: a POST
to a subscription's endpoint. It answers what the test told it to (201 by default), keeps
every request, and checks what a push service checks: the VAPID Authorization header, an
ES256 JWT signed by the key the server publishes, for the endpoint's origin (RFC 8292).
`Browser` is what a browser makes when it subscribes: a P-256 key pair and a 16-byte auth
secret; it decrypts what it receives (aes128gcm, RFC 8291) with http_ece.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from requests.structures import CaseInsensitiveDict


def b64d(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class Received:
    path: str
    headers: CaseInsensitiveDict  # as a push service reads them: names in any case
    body: bytes


class PushService:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, list[int]] = {}  # path → statuses to answer, in turn
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with service.lock:
                    service.received.append(Received(self.path, CaseInsensitiveDict(self.headers),
                                                      body))
                    queue = service.answers.get(self.path) or []
                    status = queue.pop(0) if queue else 201
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "45")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PushService:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def to(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/push/{name}"]


def check_vapid(request: Received, *, public_key: str, origin: str) -> dict:
    """The claims of a request's VAPID Authorization, after checking it as a push service
    does: `vapid t=<JWT>,k=<key>`, k the server's published key, the JWT ES256 under it, aud
    the endpoint's origin, exp in the next 24 hours, sub a mailto: or https: URL."""
    scheme, _, params = request.headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(item.split("=", 1) for item in params.split(","))
    assert parts["k"] == public_key
    head, claims, signature = parts["t"].split(".")
    assert json.loads(b64d(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = b64d(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(public_key))
    key.verify(encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:])),
               f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    decoded = json.loads(b64d(claims))
    assert decoded["aud"] == origin
    assert time.time() < decoded["exp"] <= time.time() + 24 * 3600
    assert decoded["sub"].startswith(("mailto:", "https://"))
    return decoded


class Browser:
    """A browser's keys for one subscription (what PushManager.subscribe makes)."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self, endpoint: str) -> dict:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": endpoint, "expirationTime": None,
                "keys": {"p256dh": b64e(point), "auth": b64e(self.auth)}}

    def decrypt(self, request: Received) -> dict:
        assert request.headers["Content-Encoding"] == "aes128gcm"
        plain = http_ece.decrypt(request.body, private_key=self.private_key,
                                 auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)
