"""Retention: check-ins older than SCANBOOK_RETENTION_DAYS are deleted on a schedule; a
deleted logbook's check-ins stay traceable until then."""

from __future__ import annotations

from datetime import timedelta

from models.tables import utcnow
from tests.conftest import ADMIN
from tests.workers.helpers import checkin_at


def _trace_ids(client, person) -> list[int]:
    r = client.get(f"/api/admin/trace?id_number={person['id_number']}&purpose=retention",
                   headers=ADMIN)
    assert r.status_code == 200, r.text
    return sorted(c["id"] for c in r.json()["checkins"])


def test_purge_deletes_only_expired_checkins(client, people, run_jobs, redis_client,
                                             venue_with_logbook):
    from workers.queues import enqueue

    owner, _venue, logbook = venue_with_logbook
    engine = client.app.state.engine
    visitor = people.make("访客")
    now = utcnow()
    old = checkin_at(engine, visitor, logbook, now - timedelta(days=28, minutes=1))
    kept = checkin_at(engine, visitor, logbook, now - timedelta(days=27, hours=23))
    recent = checkin_at(engine, visitor, logbook, now - timedelta(days=1))
    assert client.delete(f"/api/logbooks/{logbook['id']}", headers=owner["headers"]
                         ).status_code == 204
    assert _trace_ids(client, visitor) == [old, kept, recent]  # deleted logbook: still traced

    queued = enqueue(redis_client, "workers.retention.purge_checkins")
    run_jobs()
    r = client.get(f"/api/admin/jobs/{queued.id}", headers=ADMIN).json()
    assert r["state"] == "finished" and r["result"]["deleted"] == 1
    assert r["result"]["retention_days"] == 28
    assert _trace_ids(client, visitor) == [kept, recent]


def test_retention_days_setting(client, people, run_jobs, redis_client, venue_with_logbook,
                                monkeypatch):
    from workers.context import reset
    from workers.queues import enqueue

    _owner, _venue, logbook = venue_with_logbook
    visitor = people.make("访客")
    checkin_at(client.app.state.engine, visitor, logbook, utcnow() - timedelta(days=8))
    monkeypatch.setenv("SCANBOOK_RETENTION_DAYS", "7")
    reset()
    queued = enqueue(redis_client, "workers.retention.purge_checkins")
    run_jobs()
    result = client.get(f"/api/admin/jobs/{queued.id}", headers=ADMIN).json()["result"]
    assert result == {**result, "deleted": 1, "retention_days": 7}
    reset()


def test_cron_scheduler_enqueues_retention_with_the_json_serializer(client, redis_client,
                                                                   run_jobs):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from workers.queues import queue
    from workers.schedule import RETENTION_CRON, make_scheduler

    scheduler = make_scheduler(redis_client)
    [cron_job] = [j for j in scheduler.get_jobs() if j.func_name.endswith("purge_checkins")]
    assert cron_job.cron == RETENTION_CRON
    for other in scheduler.get_jobs():  # only the retention job is due in this test
        if other is not cron_job:
            other.next_enqueue_time = utcnow() + timedelta(hours=1)
    cron_job.next_enqueue_time = utcnow() - timedelta(seconds=1)  # due now
    assert scheduler.enqueue_jobs() == [cron_job]
    [job_id] = queue(redis_client).job_ids
    enqueued = Job.fetch(job_id, connection=redis_client, serializer=JSONSerializer)
    assert enqueued.func_name == "workers.retention.purge_checkins"
    run_jobs()
    assert enqueued.get_status(refresh=True) == "finished"
    assert cron_job.next_enqueue_time > utcnow()


def test_cron_thread_starts_and_stops(redis_client):
    from workers.schedule import start_thread

    thread, stop = start_thread(redis_client)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
