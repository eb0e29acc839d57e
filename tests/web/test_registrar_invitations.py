"""Co-registrars are invited and decide: the inviter learns nothing about the invitee (same
answer for a green, an abnormal and a nonexistent citizen), the invitee accepts only when
green and before the invitation expires, the owner removes, a co-registrar leaves; invites are
rate limited and audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from models.errors import InvitationExpired
from models.registrars import accept_invitation, is_expired
from models.tables import Citizen, RegistrarInvitation
from tests.conftest import ADMIN, People, add_co_registrar, client_with


def _invite(client, owner, venue, citizen_id):
    return client.post(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"],
                       json={"citizen_id": citizen_id})


def _set_status(client, run_jobs, person, status):
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": person["id_number"], "status": status, "reason": "测试 / test"}]})
    assert r.status_code == 202, r.text
    run_jobs()


def _comparable(body: dict) -> dict:
    return {k: v for k, v in body.items()
            if k not in ("id", "citizen_id", "created_at", "expires_at")}


def test_the_inviter_learns_nothing_about_the_invitee(client, people, run_jobs,
                                                      venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    green, red = people.make("绿码"), people.make("红码")
    _set_status(client, run_jobs, red, "red")
    answers = [_invite(client, owner, venue, who) for who in (green["id"], red["id"], 987654)]
    assert [r.status_code for r in answers] == [201, 201, 201]
    bodies = [r.json() for r in answers]
    assert all(list(b) == list(bodies[0]) for b in bodies)
    assert all(_comparable(b) == _comparable(bodies[0]) for b in bodies)
    assert bodies[0]["state"] == "pending" and bodies[0]["active"] is False
    assert [b["citizen_id"] for b in bodies] == [green["id"], red["id"], 987654]
    # ...nor does the venue's list: pending invitations by number, no names.
    listing = client.get(f"/api/venues/{venue['id']}/registrars", headers=owner["headers"])
    assert listing.status_code == 200
    pending = listing.json()["invitations"]
    assert [p["citizen_id"] for p in pending] == [green["id"], red["id"], 987654]
    assert green["name_masked"] not in listing.text and red["name_masked"] not in listing.text
    assert [i["role"] for i in listing.json()["items"]] == ["owner"]
    # Inviting again answers the same pending invitation.
    again = _invite(client, owner, venue, red["id"])
    assert again.status_code == 201 and again.json()["id"] == bodies[1]["id"]


def test_the_invitee_sees_and_accepts_only_when_green(client, people, run_jobs,
                                                      venue_with_logbook):
    owner, venue, logbook = venue_with_logbook
    helper = people.make("周七")
    invitation = _invite(client, owner, venue, helper["id"]).json()
    mine = client.get("/api/me/invitations", headers=helper["headers"]).json()["items"]
    assert [(m["id"], m["venue"]["id"], m["venue"]["name"], m["inviter_masked"])
            for m in mine] == [(invitation["id"], venue["id"], venue["name"], "李*")]
    # Not yet a registrar.
    r = client.get(f"/api/venues/{venue['id']}/logbooks", headers=helper["headers"])
    assert r.status_code == 403
    _set_status(client, run_jobs, helper, "yellow")
    r = client.post(f"/api/invitations/{invitation['id']}/accept", headers=helper["headers"])
    assert r.status_code == 403 and r.json()["error"] == "registrar_not_green"
    # The inviter's view is unchanged: still pending, nothing about the status.
    pending = client.get(f"/api/venues/{venue['id']}/registrars",
                         headers=owner["headers"]).json()["invitations"]
    assert [(p["id"], p["state"]) for p in pending] == [(invitation["id"], "pending")]
    _set_status(client, run_jobs, helper, "green")
    r = client.post(f"/api/invitations/{invitation['id']}/accept", headers=helper["headers"])
    assert r.status_code == 200 and r.json()["state"] == "accepted" and r.json()["active"]
    assert client.get(f"/api/venues/{venue['id']}/logbooks",
                      headers=helper["headers"]).json()["items"][0]["id"] == logbook["id"]
    listing = client.get(f"/api/venues/{venue['id']}/registrars", headers=helper["headers"])
    assert [(i["citizen_id"], i["role"]) for i in listing.json()["items"]] == [
        (owner["id"], "owner"), (helper["id"], "co")]
    assert listing.json()["invitations"] == []  # pending invitations: the owner's business
    assert client.get("/api/me/invitations", headers=helper["headers"]).json()["items"] == []
    r = client.post(f"/api/invitations/{invitation['id']}/accept", headers=helper["headers"])
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_declining_and_other_peoples_invitations(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper, nosy = people.make("周七"), people.make("吴八")
    invitation = _invite(client, owner, venue, helper["id"]).json()
    for path in ("accept", "decline"):  # someone else's invitation: not found
        r = client.post(f"/api/invitations/{invitation['id']}/{path}", headers=nosy["headers"])
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post("/api/invitations/999999/accept", headers=helper["headers"])
    assert r.status_code == 404
    r = client.post(f"/api/invitations/{invitation['id']}/decline", headers=helper["headers"])
    assert r.status_code == 200 and r.json()["state"] == "declined"
    r = client.get(f"/api/venues/{venue['id']}/logbooks", headers=helper["headers"])
    assert r.status_code == 403
    r = client.post(f"/api/invitations/{invitation['id']}/accept", headers=helper["headers"])
    assert r.status_code == 409


def test_only_the_green_owner_invites(client, people, run_jobs, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    co, someone = people.make("周七"), people.make("吴八")
    add_co_registrar(client, owner, venue["id"], co)
    r = _invite(client, co, venue, someone["id"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = _invite(client, someone, venue, co["id"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    for bad in ("7", 0, -1, True, 2**31, None):
        r = _invite(client, owner, venue, bad)
        assert r.status_code == 422 and r.json()["error"] == "validation_error", bad
    r = _invite(client, owner, venue, owner["id"])  # already a registrar here
    assert r.status_code == 409
    assert client.post("/api/venues/999999/registrars", headers=owner["headers"],
                       json={"citizen_id": someone["id"]}).status_code == 404
    _set_status(client, run_jobs, owner, "yellow")
    r = _invite(client, owner, venue, someone["id"])
    assert r.status_code == 403 and r.json()["error"] == "registrar_not_green"


def test_the_owner_removes_and_a_co_registrar_leaves(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    first, second, invited = people.make("周七"), people.make("吴八"), people.make("郑九")
    add_co_registrar(client, owner, venue["id"], first)
    add_co_registrar(client, owner, venue["id"], second)
    pending = _invite(client, owner, venue, invited["id"]).json()
    base = f"/api/venues/{venue['id']}/registrars"
    # A co-registrar can neither remove another nor the owner; the owner cannot leave.
    r = client.delete(f"{base}/{second['id']}", headers=first["headers"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert client.delete(f"{base}/{owner['id']}", headers=first["headers"]).status_code == 403
    r = client.delete(f"{base}/{owner['id']}", headers=owner["headers"])
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    # The owner removes one, the other leaves, a pending invitation is withdrawn.
    assert client.delete(f"{base}/{first['id']}", headers=owner["headers"]).status_code == 204
    assert client.delete(f"{base}/{second['id']}", headers=second["headers"]).status_code == 204
    assert client.delete(f"{base}/{invited['id']}", headers=owner["headers"]).status_code == 204
    for gone in (first, second):
        r = client.get(f"/api/venues/{venue['id']}/logbooks", headers=gone["headers"])
        assert r.status_code == 403
    r = client.post(f"/api/invitations/{pending['id']}/accept", headers=invited["headers"])
    assert r.status_code == 409
    listing = client.get(base, headers=owner["headers"]).json()
    assert [i["citizen_id"] for i in listing["items"]] == [owner["id"]]
    assert listing["invitations"] == []
    r = client.delete(f"{base}/{first['id']}", headers=owner["headers"])
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    # Removed, they may be invited again and come back.
    add_co_registrar(client, owner, venue["id"], first)
    assert client.get(f"/api/venues/{venue['id']}/logbooks",
                      headers=first["headers"]).status_code == 200


def test_every_step_is_audited(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper, other = people.make("周七"), people.make("吴八")
    add_co_registrar(client, owner, venue["id"], helper)
    declined = _invite(client, owner, venue, other["id"]).json()
    client.post(f"/api/invitations/{declined['id']}/decline", headers=other["headers"])
    _invite(client, owner, venue, 4242)
    base = f"/api/venues/{venue['id']}/registrars"
    client.delete(f"{base}/4242", headers=owner["headers"])
    client.delete(f"{base}/{helper['id']}", headers=helper["headers"])
    items = client.get("/api/admin/audit", headers=ADMIN).json()["items"]
    steps = [(i["action"], f"{i['actor']['kind']}:{i['actor']['id']}", i["citizen_id"])
             for i in reversed(items) if i["action"].startswith("registrar_")]
    o, h, x = f"citizen:{owner['id']}", f"citizen:{helper['id']}", f"citizen:{other['id']}"
    assert steps == [
        ("registrar_invite", o, helper["id"]), ("registrar_accept", h, helper["id"]),
        ("registrar_invite", o, other["id"]), ("registrar_decline", x, other["id"]),
        ("registrar_invite", o, 4242), ("registrar_withdraw", o, 4242),
        ("registrar_leave", h, helper["id"])]
    assert all(i["target"] == f"venue:{venue['id']}" for i in items
               if i["action"].startswith("registrar_"))


@pytest.fixture
def tight_client():
    with client_with(invite_rate_per_hour=3) as c:
        yield c


def test_invitations_are_rate_limited_per_inviter(tight_client):
    people = People(tight_client)
    owner, other = people.make("李四"), people.make("周五")
    venues = [tight_client.post("/api/venues", headers=who["headers"], json={
        "name": "场所", "address": "某路1号", "district": "朝阳区",
        "category": "office"}).json() for who in (owner, other)]
    codes = [_invite(tight_client, owner, venues[0], n).status_code for n in range(100, 104)]
    assert codes == [201, 201, 201, 429]
    r = _invite(tight_client, owner, venues[0], 200)
    assert r.json()["error"] == "rate_limited" and 1 <= r.json()["retry_after"] <= 3600
    assert int(r.headers["Retry-After"]) == r.json()["retry_after"]
    assert _invite(tight_client, other, venues[1], 100).status_code == 201


# --- expiry ----------------------------------------------------------------------------------

def _move_expiry(client, invitation_id: int, expires_at) -> None:
    """Time passing for one invitation: its expiry moved (the row, not the clock)."""
    with client.app.state.engine.begin() as conn:
        conn.execute(update(RegistrarInvitation).where(RegistrarInvitation.id == invitation_id)
                     .values(expires_at=expires_at))


@pytest.fixture
def two_day_client():
    with client_with(invitation_days=2) as c:
        yield c


def test_an_invitation_lasts_the_settings_days(two_day_client):
    people = People(two_day_client)
    owner, helper = people.make("李四"), people.make("周七")
    venue = two_day_client.post("/api/venues", headers=owner["headers"], json={
        "name": "场所", "address": "某路1号", "district": "朝阳区", "category": "office"}).json()
    body = _invite(two_day_client, owner, venue, helper["id"]).json()
    made, ends = (datetime.fromisoformat(body[k]) for k in ("created_at", "expires_at"))
    assert ends - made == timedelta(days=2) and body["state"] == "pending"
    mine = two_day_client.get("/api/me/invitations", headers=helper["headers"]).json()["items"]
    assert [m["expires_at"] for m in mine] == [body["expires_at"]]


def test_accepted_before_the_instant_it_expires_not_at_it(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    early, late = people.make("周七"), people.make("吴八")
    ids = {who["id"]: _invite(client, owner, venue, who["id"]).json()["id"]
           for who in (early, late)}
    with Session(client.app.state.engine) as session:
        for who in (early, late):
            invitation = session.get(RegistrarInvitation, ids[who["id"]])
            assert invitation.expires_at - invitation.created_at == timedelta(days=7)
        first = session.get(RegistrarInvitation, ids[early["id"]])
        accepted = accept_invitation(session, invitation_id=first.id,
                                     actor=session.get(Citizen, early["id"]),
                                     now=first.expires_at - timedelta(microseconds=1))
        assert accepted.state == "accepted"
        second = session.get(RegistrarInvitation, ids[late["id"]])
        assert not is_expired(second, second.expires_at - timedelta(microseconds=1))
        assert is_expired(second, second.expires_at)
        with pytest.raises(InvitationExpired):
            accept_invitation(session, invitation_id=second.id,
                              actor=session.get(Citizen, late["id"]), now=second.expires_at)
    r = client.get(f"/api/venues/{venue['id']}/logbooks", headers=late["headers"])
    assert r.status_code == 403  # not a registrar


def test_an_expired_invitation_cannot_be_answered_and_reads_expired(client, people,
                                                                    venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper = people.make("周七")
    invitation = _invite(client, owner, venue, helper["id"]).json()
    _move_expiry(client, invitation["id"], datetime.now(UTC) - timedelta(seconds=1))
    for answer in ("accept", "decline"):
        r = client.post(f"/api/invitations/{invitation['id']}/{answer}",
                        headers=helper["headers"])
        assert r.status_code == 410, r.text
        body = r.json()
        assert body["error"] == "invitation_expired" and "已过期" in body["message"]
        assert set(body) == {"error", "message", "detail"} and body["detail"]["expires_at"]
    r = client.get(f"/api/venues/{venue['id']}/logbooks", headers=helper["headers"])
    assert r.status_code == 403
    # the invitee's list no longer offers it; their home page neither
    assert client.get("/api/me/invitations", headers=helper["headers"]).json()["items"] == []
    # the owner sees it as expired, on the API and on the venue page (已过期)
    listing = client.get(f"/api/venues/{venue['id']}/registrars",
                         headers=owner["headers"]).json()["invitations"]
    assert [(i["id"], i["state"], i["active"]) for i in listing] == [
        (invitation["id"], "expired", False)]
    client.post("/login", data={"token": owner["token"], "next": "/"})
    page = client.get(f"/venues/{venue['id']}").text
    item = re.search(rf'<li data-citizen-id="{helper["id"]}"[^>]*>.*?</li>', page, re.S).group(0)
    assert 'data-state="expired"' in item and "已过期" in item and "等待对方接受" not in item
    client.cookies.clear()
    # inviting again closes it and makes a new one, which can be accepted
    again = _invite(client, owner, venue, helper["id"]).json()
    assert again["id"] != invitation["id"] and again["state"] == "pending"
    listing = client.get(f"/api/venues/{venue['id']}/registrars",
                         headers=owner["headers"]).json()["invitations"]
    assert [(i["id"], i["state"]) for i in listing] == [(again["id"], "pending")]
    r = client.post(f"/api/invitations/{invitation['id']}/accept", headers=helper["headers"])
    assert r.status_code == 410  # the old one stays expired
    r = client.post(f"/api/invitations/{again['id']}/accept", headers=helper["headers"])
    assert r.status_code == 200 and r.json()["state"] == "accepted"


def test_the_owner_withdraws_an_expired_invitation(client, people, venue_with_logbook):
    owner, venue, _logbook = venue_with_logbook
    helper = people.make("周七")
    invitation = _invite(client, owner, venue, helper["id"]).json()
    _move_expiry(client, invitation["id"], datetime.now(UTC) - timedelta(days=1))
    base = f"/api/venues/{venue['id']}/registrars"
    assert client.delete(f"{base}/{helper['id']}", headers=owner["headers"]).status_code == 204
    assert client.get(base, headers=owner["headers"]).json()["invitations"] == []
