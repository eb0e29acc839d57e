"""ID numbers at rest (models/crypto.py): AES-256-GCM values and the keyed look-up hash."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import text

from models.crypto import DecryptionError, Keyring, decrypt_id, id_lookup, keyring
from models.idnumber import make_id_number
from models.settings import load_settings
from models.tables import Citizen
from tests.conftest import ADMIN

NUMBER = make_id_number("110101", date(1990, 1, 1), 123)
K1, K2 = os.urandom(32), os.urandom(32)


def test_round_trip_and_layout():
    ring = Keyring({1: K1})
    blob = ring.encrypt(NUMBER)
    assert ring.decrypt(blob) == NUMBER
    assert blob[0] == 1 and len(blob) == 1 + 12 + len(NUMBER) + 16  # version, nonce, ct, tag
    assert NUMBER.encode() not in blob


def test_each_value_gets_its_own_nonce():
    ring = Keyring({1: K1})
    blobs = {ring.encrypt(NUMBER) for _ in range(100)}
    assert len(blobs) == 100 and len({b[1:13] for b in blobs}) == 100


@pytest.mark.parametrize("at", [0, 1, 12, 13, 20, -1])  # version, nonce, ciphertext, tag
def test_any_changed_byte_is_detected(at):
    ring = Keyring({1: K1, 2: K2})
    blob = bytearray(ring.encrypt(NUMBER))
    blob[at] ^= 0x01
    with pytest.raises(DecryptionError):
        ring.decrypt(bytes(blob))


def test_truncated_value_is_refused():
    ring = Keyring({1: K1})
    with pytest.raises(DecryptionError, match="truncated"):
        ring.decrypt(ring.encrypt(NUMBER)[:20])


def test_wrong_key_fails():
    with pytest.raises(DecryptionError, match="authentication"):
        Keyring({1: K2}).decrypt(Keyring({1: K1}).encrypt(NUMBER))


def test_lookup_hash_is_stable_and_keyed():
    ring = Keyring({1: K1})
    assert ring.lookup(NUMBER) == Keyring({1: K1}).lookup(NUMBER)
    assert len(ring.lookup(NUMBER)) == 64 and int(ring.lookup(NUMBER), 16) >= 0
    assert ring.lookup(NUMBER) != Keyring({1: K2}).lookup(NUMBER)
    assert ring.lookup(NUMBER) != hashlib.sha256(NUMBER.encode()).hexdigest()  # not a bare hash
    assert ring.lookup(NUMBER) != ring.lookup(NUMBER[:-1] + "0")


def test_a_new_key_version_encrypts_and_the_old_one_still_decrypts():
    old, new = Keyring({1: K1}), Keyring({1: K1, 2: K2})
    before = old.encrypt(NUMBER)
    after = new.encrypt(NUMBER)
    assert (before[0], after[0]) == (1, 2)
    assert new.decrypt(before) == new.decrypt(after) == NUMBER
    assert new.lookup(NUMBER) == old.lookup(NUMBER)  # look-ups survive a rotation
    with pytest.raises(DecryptionError, match="key version 2"):
        old.decrypt(after)


def test_development_keys_come_from_the_secret():
    settings = load_settings()
    assert not settings.data_keys  # the test environment sets no SCANBOOK_DATA_KEY
    same = Keyring.from_settings(settings)
    assert same.lookup(NUMBER) == keyring().lookup(NUMBER)
    other = Keyring.from_settings(replace(settings, secret="another-secret-" + "z" * 20))
    assert other.lookup(NUMBER) != same.lookup(NUMBER)
    with pytest.raises(DecryptionError):
        other.decrypt(same.encrypt(NUMBER))
    configured = Keyring.from_settings(replace(settings, data_keys={1: K1}))
    assert configured.lookup(NUMBER) == Keyring({1: K1}).lookup(NUMBER)


def test_an_encrypted_column_cannot_be_compared():
    with pytest.raises(TypeError, match="id_hash"):
        Citizen.id_number == NUMBER  # noqa: B015
    with pytest.raises(TypeError, match="id_hash"):
        Citizen.__table__.c.id_number.in_([NUMBER])


def test_no_id_number_in_clear_in_the_citizen_and_visitor_tables(client, engine, people, run_jobs,
                                                     venue_with_logbook):
    owner, venue, book = venue_with_logbook
    made = [people.make("王五"), people.make("赵六")]
    numbers = [owner["id_number"]] + [p["id_number"] for p in made]
    visitor = make_id_number("110102", date(1950, 2, 3), 41)  # a visitor without a phone
    r = client.post(f"/api/logbooks/{book['id']}/proxy-checkins", headers=owner["headers"],
                    json={"name": "孙七", "id_number": visitor})
    assert r.status_code == 201, r.text  # an unregistered visitor: a visitor row, no citizen
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": made[0]["id_number"], "status": "yellow", "reason": "密接"}]})
    assert r.status_code == 202
    run_jobs()
    r = client.post("/api/scan", headers=made[0]["headers"], json={"code": book["token"]})
    assert r.status_code == 201, r.text

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM citizen")).all()
        visitor_rows = conn.execute(text("SELECT * FROM visitor")).all()
    assert len(rows) == len(numbers) and len(visitor_rows) == 1
    cells = [value for row in rows + visitor_rows for value in row]
    blobs = [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in cells]
    for number in [*numbers, visitor]:
        # the number, most of it, its birth date and sequence, or the number in base64
        for form in (number, number[:17], number[6:17], base64.b64encode(number.encode())):
            form = form if isinstance(form, bytes) else form.encode()
            assert not [b for b in blobs if form in b]
    # ...and the application still reads them
    with engine.connect() as conn:
        encrypted = conn.execute(text("SELECT id_number_enc, id_hash FROM citizen")).all()
    assert sorted(decrypt_id(enc) for enc, _ in encrypted) == sorted(numbers)
    assert {h for _, h in encrypted} == {id_lookup(n) for n in numbers}
    with engine.connect() as conn:
        enc, id_hash = conn.execute(text("SELECT id_number_enc, id_hash FROM visitor")).one()
    assert decrypt_id(enc) == visitor and id_hash == id_lookup(visitor)
    r = client.get(f"/api/admin/trace?id_number={visitor}&purpose=test", headers=ADMIN)
    assert r.status_code == 200 and r.json()["citizen"] is None
    assert r.json()["visitors"][0]["id_number"] == visitor


def test_json_payload_round_trip_and_labels(monkeypatch):
    from models import crypto

    ring = Keyring({1: K1})
    monkeypatch.setattr(crypto, "_keyring", ring)
    payload = {"changes": [{"id_number": NUMBER, "status": "red", "reason": "密接"}]}
    blob = crypto.encrypt_json(payload)
    assert crypto.decrypt_json(blob) == payload and blob[0] == 1
    assert NUMBER.encode() not in blob and base64.b64encode(NUMBER.encode()) not in blob
    # each value is bound to its use: a sealed payload is not an ID number, nor the reverse
    with pytest.raises(DecryptionError, match="ID number"):
        ring.decrypt(blob)
    with pytest.raises(DecryptionError, match="batch payload"):
        crypto.decrypt_json(ring.encrypt(NUMBER))
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError, match="batch payload"):
        crypto.decrypt_json(bytes(tampered))


def test_an_encrypted_payload_cannot_be_compared():
    from models.tables import Batch

    with pytest.raises(TypeError, match="encrypted JSON"):
        Batch.payload == {}  # noqa: B015
