"""ID numbers at rest: AES-256-GCM encryption, and an HMAC-SHA256 hash for look-ups.

A citizen's ID number is stored encrypted (`citizen.id_number_enc`) with a random 96-bit nonce
per value, so equal numbers give different ciphertexts and the column cannot be searched.
Look-ups go through `citizen.id_hash` = HMAC-SHA256(look-up key, number): deterministic, but
worthless without the key (ID numbers are few enough to enumerate, so a plain hash would be
reversible).

Stored value: version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext and tag (18 + 16 bytes). The
version byte says which key encrypted it; it is authenticated too.

An official's batch request (`batch.payload`, which may list thousands of ID numbers) is
sealed the same way as one value: `encrypt_json` / `decrypt_json` (orjson, then AES-GCM under
the same keys, with its own associated-data label, so neither kind of value opens as the other).

Keys (models/settings.py): `SCANBOOK_DATA_KEY` is key version 1 (base64, 32+ random bytes;
required in production). Outside production without it, key 1 is derived from
`SCANBOOK_SECRET`, so changing that secret makes a development database's ID numbers
unreadable. The AES key of each version and the look-up key are derived from the key
material with HKDF-SHA256 under distinct labels.

Adding a key (rotation): generate one (`openssl rand -base64 32`), set it as
`SCANBOOK_DATA_KEY_V2` (then `_V3`, … up to 255) on every process, keep the older ones. The
highest version encrypts new values; every listed version still decrypts. Old rows keep
their version until rewritten (`reencrypt_all` rewrites them in batches); once none is left
an old `_Vn` variable may go. Key 1 stays: the look-up key is derived from it, and changing
that would mean recomputing every `id_hash`.

The keys are process-wide (one process, one set of keys): read from the environment on
first use, or set with `use_keyring` (benchmarks, tests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12  # 96 bits: GCM's native nonce size; random, so at most ~2^32 values a key
_AES_INFO = b"scanbook/id-number/aes-256-gcm/v"
_LOOKUP_INFO = b"scanbook/id-number/lookup/hmac-sha256"
_DEV_INFO = b"scanbook/data-key/from-secret"
_AAD = b"scanbook:citizen.id_number:"  # + the version byte: a value is bound to its use
_PAYLOAD_AAD = b"scanbook:batch.payload:"


class DecryptionError(ValueError):
    """A stored value that does not decrypt: tampered, truncated, or under an unknown key."""


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def new_key() -> str:
    """A fresh key for SCANBOOK_DATA_KEY (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


class Keyring:
    """The data keys by version (1 is required: the look-up key comes from it)."""

    def __init__(self, keys: Mapping[int, bytes]):
        if 1 not in keys:
            raise ValueError("key version 1 is required")
        if not all(1 <= v <= 255 for v in keys):
            raise ValueError("key versions are 1-255")
        self._keys = dict(keys)
        self._aead = {v: AESGCM(_hkdf(k, _AES_INFO + str(v).encode())) for v, k in keys.items()}
        self.current = max(keys)
        self._header = bytes([self.current])
        self._lookup = hmac.new(_hkdf(keys[1], _LOOKUP_INFO), digestmod=hashlib.sha256)

    def __reduce__(self):
        """Pickled as its keys (the check-in writer process gets its parent's keyring)."""
        return (Keyring, (self._keys,))

    @classmethod
    def from_settings(cls, settings) -> Keyring:
        """Production: settings.data_keys. Elsewhere, without them: key 1 from the secret."""
        if settings.data_keys:
            return cls(settings.data_keys)
        return cls({1: _hkdf(settings.secret.encode(), _DEV_INFO)})

    def seal(self, data: bytes, aad: bytes = _AAD) -> bytes:
        """version ‖ nonce ‖ AES-GCM(data), authenticated with `aad` + the version byte (the
        label binds a value to its use: a sealed payload does not open as an ID number)."""
        nonce = os.urandom(NONCE_BYTES)
        return (self._header + nonce + self._aead[self.current].encrypt(
            nonce, data, aad + self._header))

    def unseal(self, blob: bytes, aad: bytes = _AAD, what: str = "ID number") -> bytes:
        if len(blob) < 1 + NONCE_BYTES + 16:
            raise DecryptionError(f"stored {what} is truncated")
        aead = self._aead.get(blob[0])
        if aead is None:
            raise DecryptionError(f"stored {what} uses key version {blob[0]}, which is not "
                                  "configured (SCANBOOK_DATA_KEY_V<n>)")
        try:
            return aead.decrypt(blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:],
                                aad + blob[:1])
        except InvalidTag:
            raise DecryptionError(f"stored {what} fails authentication (wrong key or "
                                  "tampered)") from None

    def encrypt(self, plain: str) -> bytes:
        return self.seal(plain.encode())

    def decrypt(self, blob: bytes) -> str:
        return self.unseal(blob).decode()

    def lookup(self, id_number: str) -> str:
        """The keyed hash stored in citizen.id_hash (64 hex characters)."""
        h = self._lookup.copy()  # the key's inner/outer pads are computed once
        h.update(id_number.encode())
        return h.hexdigest()


_keyring: Keyring | None = None


def keyring() -> Keyring:
    """The process's keys (from the environment's settings on first use)."""
    global _keyring
    if _keyring is None:
        from models.settings import load_settings

        _keyring = Keyring.from_settings(load_settings())
    return _keyring


def use_keyring(ring: Keyring | None) -> None:
    """Set the process's keys (None: read them from the settings again on next use)."""
    global _keyring
    _keyring = ring


def encrypt_id(id_number: str) -> bytes:
    return keyring().encrypt(id_number)


def decrypt_id(blob: bytes) -> str:
    return keyring().decrypt(bytes(blob))


def id_lookup(id_number: str) -> str:
    """HMAC-SHA256 of a normalized ID number (`parse_id_number(...).value`): the value of
    citizen.id_hash to search for."""
    return keyring().lookup(id_number)


def encrypt_json(value: Any) -> bytes:
    """A JSON value (an official's batch request) as one sealed blob: orjson, then AES-GCM
    under the current key, labelled as a batch payload."""
    return keyring().seal(orjson.dumps(value), _PAYLOAD_AAD)


def decrypt_json(blob: bytes) -> Any:
    return orjson.loads(keyring().unseal(bytes(blob), _PAYLOAD_AAD, "batch payload"))
