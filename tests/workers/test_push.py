"""Push when the page is closed (docs/push.md): a real status change run by a real RQ worker
reaches a local push service, signed with the server's VAPID key and encrypted for the
browser; gone subscriptions are forgotten, busy services retried later, announcements fanned
out, and an SMS goes to those changed to red or yellow whom no browser reaches."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from models.idnumber import make_id_number
from models.settings import load_settings
from models.tables import PushSubscription
from realtime.sms import dev_notices
from tests.conftest import ADMIN
from tests.pushservice import Browser, PushService, check_vapid
from tests.workers.helpers import change, job, submit
from workers.queues import queue


@pytest.fixture
def push_service():
    with PushService() as service:
        yield service


def citizen(client, phone: str, seq: int) -> dict:
    """A citizen with a phone of their own (the `people` fixture shares one)."""
    number = make_id_number("110105", date(1980, 1, 1), 300 + seq)
    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": "王小明", "id_number": number, "phone": phone})
    assert r.status_code == 201, r.text
    body = r.json()
    return {**body, "id_number": number, "phone": phone,
            "headers": {"Authorization": f"Bearer {body['token']}"}}


def subscribe(client, person: dict, push_service: PushService, name: str) -> Browser:
    browser = Browser()
    r = client.post("/api/me/push-subscriptions", headers=person["headers"],
                    json=browser.subscription(push_service.endpoint(name)))
    assert r.status_code == 201, r.text
    return browser


def test_a_status_change_arrives_signed_and_encrypted(client, run_jobs, push_service):
    key = client.get("/api/push/key").json()["public_key"]
    path = load_settings().data_dir / "vapid_private.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # made on first start, private
    person = citizen(client, "13911112222", 1)
    browser = subscribe(client, person, push_service, "phone-1")

    queued = submit(client, "/api/admin/status-changes",
                    {"changes": [change(person, "red", reason="确诊病例密接")]})
    run_jobs()  # the status change, then the push job it queued after its commit

    assert job(client, queued["job_id"])["result"]["applied"] == 1
    [request] = push_service.to("phone-1")
    claims = check_vapid(request, public_key=key, origin=push_service.origin)
    assert claims["aud"] == push_service.origin
    assert request.headers["Urgency"] == "high" and request.headers["Topic"] == "status"
    assert int(request.headers["TTL"]) == 86400
    payload = browser.decrypt(request)
    assert payload["kind"] == "status" and payload["status"] == "red"
    assert payload["title"] == "健康状态变更" and "集中观察" in payload["body"]
    assert payload["en"]["title"] == "Health status changed"
    assert payload["url"] == "/" and payload["tag"] == "scanbook-status"
    text = request.body.decode("latin-1") + str(payload)
    for secret in (person["id_number"], person["id_number"][2:-2], "王小明", "确诊病例密接",
                   person["phone"]):
        assert secret not in text  # no ID number, name, reason or phone in a payload
    assert dev_notices(client.app.state.redis, person["phone"]) == []  # push reached them

    # the key is kept: a restart (another app) serves the same one
    from tests.conftest import client_with

    with client_with() as again:
        assert again.get("/api/push/key").json()["public_key"] == key


def test_gone_subscriptions_are_forgotten(client, engine, run_jobs, push_service):
    person = citizen(client, "13911113333", 2)
    for name in ("old-410", "old-404", "live"):
        subscribe(client, person, push_service, name)
    push_service.answers = {"/push/old-410": [410], "/push/old-404": [404]}

    submit(client, "/api/admin/status-changes", {"changes": [change(person, "yellow")]})
    run_jobs()

    assert {r.path for r in push_service.received} == {"/push/old-410", "/push/old-404",
                                                       "/push/live"}
    with engine.connect() as conn:
        left = conn.execute(select(PushSubscription.__table__.c.endpoint)).scalars().all()
    assert left == [push_service.endpoint("live")]
    # a subscription still reached them: no SMS
    assert dev_notices(client.app.state.redis, person["phone"]) == []


def test_sms_when_no_subscription_could_take_it(client, run_jobs, push_service):
    gone = citizen(client, "13911116666", 4)
    refused = citizen(client, "13911117777", 5)
    subscribe(client, gone, push_service, "gone")
    subscribe(client, refused, push_service, "refused")
    push_service.answers = {"/push/gone": [410], "/push/refused": [403]}

    submit(client, "/api/admin/status-changes",
           {"changes": [change(gone, "red"), change(refused, "yellow")]})
    run_jobs()

    redis = client.app.state.redis
    assert len(push_service.received) == 2
    assert "集中观察" in dev_notices(redis, gone["phone"])[0]
    assert "居家观察" in dev_notices(redis, refused["phone"])[0]
    mine = client.get("/api/me/push-subscriptions", headers=refused["headers"]).json()
    assert len(mine["items"]) == 1  # refused, not gone: kept
    assert client.get("/api/me/push-subscriptions", headers=gone["headers"]).json()["items"] \
        == []


def test_a_busy_push_service_is_tried_again_later(client, redis_client, run_jobs,
                                                  push_service):
    person = citizen(client, "13911114444", 3)
    browser = subscribe(client, person, push_service, "busy")
    push_service.answers = {"/push/busy": [503]}

    queued = submit(client, "/api/admin/status-changes", {"changes": [change(person, "red")]})
    run_jobs()

    # the status change itself is done; the push waits its turn in the scheduler
    state = job(client, queued["job_id"])
    assert state["state"] == "finished" and state["result"]["applied"] == 1
    assert client.get("/api/me", headers=person["headers"]).json()["status"] == "red"
    assert len(push_service.to("busy")) == 1
    q = queue(redis_client)
    registry = ScheduledJobRegistry(queue=q)
    [retry_id] = registry.get_job_ids()
    retry = q.fetch_job(retry_id)
    assert retry.func_name == "workers.push.deliver" and retry.args[1] == 1
    wait = registry.get_scheduled_time(retry) - datetime.now(UTC)
    assert 40 < wait.total_seconds() <= 45  # its Retry-After (45 s), more than BACKOFF[0]

    registry.remove(retry)
    q.enqueue_job(retry)  # its time has come (the worker's scheduler does this)
    run_jobs()
    second = push_service.to("busy")[1]
    assert browser.decrypt(second)["status"] == "red"
    assert registry.get_job_ids() == []


def test_an_announcement_reaches_every_subscription_in_batches(client, run_jobs,
                                                               push_service, monkeypatch):
    import workers.push

    monkeypatch.setattr(workers.push, "FAN_OUT", 2)  # 5 subscriptions: 3 delivery jobs
    browsers = {}
    for seq in range(5):
        person = citizen(client, f"1391111500{seq}", 10 + seq)
        browsers[f"a{seq}"] = subscribe(client, person, push_service, f"a{seq}")
    text = "今晚 20:00 起全市开展核酸检测，请就近前往检测点。" * 20  # longer than a push takes

    r = client.post("/api/admin/notices", headers=ADMIN, json={"text": text})
    assert r.status_code == 201, r.text
    run_jobs()

    for name, browser in browsers.items():
        [request] = push_service.to(name)
        payload = browser.decrypt(request)
        assert payload["kind"] == "notice" and payload["id"] == r.json()["id"]
        assert payload["tag"] == "scanbook-notice" and payload["title"] == "通知公告"
        assert text.startswith(payload["body"][:-1]) and payload["body"].endswith("…")
        assert request.headers["Urgency"] == "normal" and "Topic" not in request.headers
    q = queue(client.app.state.redis)
    done = [q.fetch_job(i).func_name for i in q.finished_job_registry.get_job_ids()]
    assert sorted(done) == ["workers.push.deliver"] * 3 + ["workers.push.push_announcement"]


def test_sms_only_for_red_or_yellow_without_push(client, run_jobs, push_service):
    from workers.queues import enqueue

    redis = client.app.state.redis
    no_push = citizen(client, "13922220001", 21)
    with_push = citizen(client, "13922220002", 22)
    popup = citizen(client, "13922220003", 23)
    subscribe(client, with_push, push_service, "with-push")

    queued = submit(client, "/api/admin/status-changes", {"changes": [
        change(no_push, "yellow"), change(with_push, "yellow"),
        change(popup, "popup", popup_kind="risk_area")]})
    run_jobs()
    # the batch run again (an RQ retry, a dead worker's job handed on) publishes its notices
    # again, and queues their pushes again: the SMS is not sent twice
    rerun = enqueue(redis, "workers.status.apply_status_changes", queued["batch_id"])
    run_jobs()
    assert rerun.return_value()["republished"] == 3

    [sms] = dev_notices(redis, no_push["phone"])
    assert "居家观察" in sms and no_push["id_number"] not in sms and "王" not in sms
    assert dev_notices(redis, with_push["phone"]) == []
    assert dev_notices(redis, popup["phone"]) == []
    assert len(push_service.to("with-push")) == 2  # pushed again: the same tag replaces it

    # back to green: a push, no SMS
    submit(client, "/api/admin/status-changes", {"changes": [change(no_push, "green"),
                                                             change(with_push, "green")]})
    run_jobs()
    assert len(dev_notices(redis, no_push["phone"])) == 1
    assert len(push_service.to("with-push")) == 3


def test_a_failed_push_job_never_fails_the_change(client, run_jobs, monkeypatch):
    """Redis refusing the push job's enqueue costs the push, never the status change."""
    import redis as redis_lib

    import workers.push

    def refuse(*args, **kwargs):
        raise redis_lib.ConnectionError("refused")

    person = citizen(client, "13933330001", 31)
    monkeypatch.setattr(workers.push, "enqueue", refuse)
    queued = submit(client, "/api/admin/status-changes", {"changes": [change(person, "red")]})
    run_jobs()
    assert job(client, queued["job_id"])["state"] == "finished"
    assert client.get("/api/me", headers=person["headers"]).json()["status"] == "red"


def test_the_itinerary_platform_clearing_a_popup_is_pushed(client, run_jobs, push_service):
    """The one writer of status notices outside the status jobs: the platform's callback."""
    from tests.web.test_itinerary import _body, _post

    person = citizen(client, "13944440001", 41)
    browser = subscribe(client, person, push_service, "traveller")
    submit(client, "/api/admin/status-changes",
            {"changes": [change(person, "popup", popup_kind="travel")]})
    run_jobs()
    popup = browser.decrypt(push_service.to("traveller")[0])
    assert popup["status"] == "popup" and popup["popup_kind"] == "travel"
    assert "行程核验" in popup["body"]

    r = _post(client, _body(person))
    assert r.status_code == 200 and r.json()["changed"] is True
    run_jobs()
    cleared = push_service.to("traveller")[1]
    assert browser.decrypt(cleared)["status"] == "green"
    assert cleared.headers["Urgency"] == "normal"
    assert dev_notices(client.app.state.redis, person["phone"]) == []  # popup, green: no SMS
