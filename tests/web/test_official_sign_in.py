"""Officials sign in as themselves: a password (argon2) and an authenticator code (TOTP),
enrolled from their account page with the QR code shown once; a code works once; failed
sign-ins are rate limited (429) and audited; the console's officials page adds, rotates and
disables accounts."""

from __future__ import annotations

import re
import time

import pyotp
from argon2 import PasswordHasher
from sqlmodel import Session

from models.tables import Official
from tests.conftest import ADMIN

PASSWORD = "correct horse battery"


def _csrf(client) -> str:
    return client.cookies["scanbook_csrf"]


def _enrol(client, official: dict) -> pyotp.TOTP:
    """Sign in with the token, set a password, scan (read) the QR's secret, confirm a code."""
    r = client.post("/login", data={"token": official["token"], "next": "/admin/account"},
                    follow_redirects=False)
    assert r.status_code == 303
    r = client.post("/admin/account/credentials", data={
        "password": PASSWORD, "password2": PASSWORD, "csrf_token": _csrf(client)})
    assert r.status_code == 200, r.text
    assert 'id="enrol-qr" src="data:image/svg+xml;base64,' in r.text
    uri = re.search(r'id="enrol-uri">([^<]+)<', r.text).group(1).replace("&amp;", "&")
    totp = pyotp.parse_uri(uri)
    assert client.get("/admin/account").text.count("enrol-qr") == 0  # shown once
    r = client.post("/admin/account/confirm", data={"code": "000000",
                                                   "csrf_token": _csrf(client)})
    assert r.status_code == 422
    r = client.post("/admin/account/confirm", data={"code": totp.now(),
                                                   "csrf_token": _csrf(client)})
    assert r.status_code == 200 and 'id="account-done"' in r.text
    assert client.post("/logout", follow_redirects=False).status_code == 303
    return totp


def _next_code(totp: pyotp.TOTP) -> str:
    """A code of the next time step (a code is good once; the next step's is accepted as
    clock drift)."""
    return totp.at(time.time() + totp.interval)


def test_enrol_then_sign_in_with_password_and_code(client, officials):
    made = officials.make("tracer", name="王医生")
    totp = _enrol(client, made)
    with Session(client.app.state.engine) as session:
        row = session.get(Official, made["id"])
        assert row.password_hash.startswith("$argon2id$")
        assert PasswordHasher().verify(row.password_hash, PASSWORD)
        assert row.totp_secret["confirmed"] is True
    login = made["login"]
    r = client.post("/api/auth/official", json={"login": login, "password": PASSWORD,
                                                "code": _next_code(totp)})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "王医生" and r.json()["role"] == "tracer"
    assert client.get("/api/admin/me").json()["id"] == made["id"]  # the session cookie
    actions = client.get("/api/admin/audit?action=sign_in", headers=ADMIN).json()["items"]
    assert actions[0]["actor"]["id"] == made["id"]
    enrolled = client.get("/api/admin/audit?action=official_enrol",
                          headers=ADMIN).json()["items"]
    assert {e["detail"]["step"] for e in enrolled} == {"password_and_secret",
                                                      "authenticator_confirmed"}
    assert PASSWORD not in str(enrolled) and totp.secret not in str(enrolled)


def test_a_code_works_once_and_wrong_credentials_fail(client, officials):
    made = officials.make("viewer", name="李卫")
    totp = _enrol(client, made)
    code = _next_code(totp)
    body = {"login": "李卫", "password": PASSWORD, "code": code}
    assert client.post("/api/auth/official", json=body).status_code == 200
    client.cookies.clear()
    r = client.post("/api/auth/official", json=body)  # the same code again
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    for wrong in ({**body, "password": "not the password"}, {**body, "login": "nobody"},
                  {**body, "code": "12"}):
        assert client.post("/api/auth/official", json=wrong).status_code == 401
    failed = client.get("/api/admin/audit?action=sign_in_failed", headers=ADMIN).json()
    assert len(failed["items"]) == 4
    assert all(PASSWORD not in str(item) for item in failed["items"])


def test_failed_sign_ins_are_rate_limited_and_audited(client, officials):
    officials.make("viewer", name="孙七")
    body = {"login": "孙七", "password": "guess-number-x", "code": "123456"}
    statuses = [client.post("/api/auth/official", json=body).status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    r = client.post("/api/auth/official", json=body)
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    items = client.get("/api/admin/audit?action=sign_in_failed&limit=50",
                       headers=ADMIN).json()["items"]
    assert len(items) == 12 and sum(bool(i["detail"].get("rate_limited")) for i in items) == 2
    # the form on the sign-in page answers with the page itself
    r = client.post("/login/official", data={**body, "next": "/admin"})
    assert r.status_code == 429 and 'id="official-error"' in r.text


def test_the_sign_in_form_signs_an_official_in(client, officials):
    made = officials.make("operator", name="周八")
    totp = _enrol(client, made)
    r = client.post("/login/official", data={"login": "周八", "password": PASSWORD,
                                             "code": _next_code(totp), "next": "/admin"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    assert "周八" in client.get("/admin").text


def test_the_officials_page_adds_rotates_and_disables(client, officials):
    r = client.post("/login", data={"token": ADMIN["Authorization"][7:], "next": "/admin"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/admin/officials")
    assert page.status_code == 200 and 'id="officials-table"' in page.text
    r = client.post("/admin/officials", data={"name": "吴九", "role": "tracer",
                                              "district": "东城区", "csrf_token": _csrf(client)})
    assert r.status_code == 201
    token = re.search(r'id="token-value">([^<]+)<', r.text).group(1)
    me = client.get("/api/admin/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["name"], me["role"], me["district"]) == ("吴九", "tracer", "东城区")
    r = client.post(f"/admin/officials/{me['id']}/token", data={"csrf_token": _csrf(client)})
    new = re.search(r'id="token-value">([^<]+)<', r.text).group(1)
    assert new != token
    assert client.get("/api/admin/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    r = client.post(f"/admin/officials/{me['id']}/disable",
                    data={"csrf_token": _csrf(client)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/admin/me",
                      headers={"Authorization": f"Bearer {new}"}).status_code == 401
    # without the CSRF token the form is refused
    r = client.post("/admin/officials", data={"name": "x", "role": "viewer"})
    assert r.status_code == 403
    # a viewer does not see the page
    viewer = officials.make("viewer")
    client.cookies.clear()
    r = client.get("/admin/officials", headers=viewer["headers"])
    assert r.status_code == 403
