"""Real processes: uvicorn (web.main:app) and the RQ worker (workers.runner, forking a horse
per job). A registrar with 100 logbooks turns red while every logbook is being scanned: every
one of them refuses scans (410 logbook_revoked) from the moment the job has ended, and the
job ends within LIMIT of the official's request."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import httpx2 as httpx

from bench.exposure import Prober
from tests.conftest import ADMIN
from tests.servers import ROOT, running_server

LOGBOOKS = 100
PERIOD = 0.05  # each logbook is scanned every 50 ms (staggered)
# From the official's request to the end of the job that revoked the logbooks (they refuse
# scans from its commit on, asserted below). The target is under 1 s (docs/status-engine.md),
# which a quiet host meets; on a loaded 2-core machine, with the probes' 2,000 scans/s, the
# request waits behind the scans and the worker forks late: 0.1-0.4 s on SQLite and 0.3-0.9 s
# on PostgreSQL measured with two busy loops beside the suite; the slowest seen, 1.25 s on
# SQLite and 1.56 s on PostgreSQL at load 7.7.
LIMIT = 2.5


def _wait_job(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/api/admin/jobs/{job_id}", headers=ADMIN).json()
        if state["state"] in ("finished", "failed"):
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


async def _measure(port: int, codes: list[str], tokens: list[str], id_number: str,
                   url: str) -> tuple[float, dict[int, float], dict[int, float], str]:
    """Probe every logbook until it refuses; (the request's wall-clock time, when each
    logbook's first refusal came, when each one's last accepted scan was sent, the job)."""
    probers = [Prober("127.0.0.1", port, c, t) for c, t in zip(codes, tokens, strict=True)]
    warm = await asyncio.gather(*(p.scan() for p in probers))
    assert all(status in (200, 201) for status, _ in warm)
    refused: dict[int, float] = {}
    accepted_sent: dict[int, float] = {}

    async def probe(i: int) -> None:
        await asyncio.sleep(PERIOD * i / len(probers))
        while True:
            due = time.monotonic() + PERIOD
            sent = time.time()  # wall clock: compared with the worker's job times
            status, body = await probers[i].scan()
            if status == 410:
                assert b"logbook_revoked" in body
                refused[i] = time.time()
                return
            assert status in (200, 201), body
            accepted_sent[i] = sent
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    tasks = [asyncio.create_task(probe(i)) for i in range(len(probers))]
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=url, headers=ADMIN) as http:
        t0 = time.time()
        r = await http.post("/api/admin/status-changes", json={"changes": [
            {"id_number": id_number, "status": "red", "reason": "确诊病例密接"}]})
        assert r.status_code == 202, r.text
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    for p in probers:
        p.close()
    return t0, refused, accepted_sent, r.json()["job_id"]


def test_registrar_with_100_logbooks_is_refused_within_the_limit(client, people, tmp_path):
    owner = people.make("李四")
    venue = client.post("/api/venues", headers=owner["headers"], json={
        "name": "大型商场", "address": "建国路87号", "district": "朝阳区",
        "category": "mall"}).json()
    codes = []
    for i in range(LOGBOOKS):
        r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                        json={"label": f"{i + 1}号门"})
        assert r.status_code == 201
        codes.append(r.json()["token"])
    scanners = [people.make(f"顾客{i}")["token"] for i in range(LOGBOOKS)]
    bystander = people.make("路人")

    env = {"SCANBOOK_SCAN_RATE_PER_MIN": "0"}  # the probes scan back to back
    log_path = tmp_path / "worker.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed below
    # PYTHONFAULTHANDLER: a worker that does not stop is asked for its threads' stacks.
    worker = subprocess.Popen([sys.executable, "-m", "workers.runner", "--no-cron"], cwd=ROOT,
                              env={**os.environ, **env, "PYTHONFAULTHANDLER": "1"},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        with running_server(env=env) as server:
            warm = httpx.post(f"{server.url}/api/admin/status-changes", headers=ADMIN, json={
                "changes": [{"id_number": bystander["id_number"], "status": "yellow",
                             "reason": "预热 / warm-up"}]}).json()
            assert _wait_job(server.url, warm["job_id"])["state"] == "finished"
            t0, refused, accepted_sent, job_id = asyncio.run(_measure(
                server.port, codes, scanners, owner["id_number"], server.url))
            state = _wait_job(server.url, job_id)
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:  # seen once under load: say where it was stuck
            worker.send_signal(signal.SIGABRT)
            worker.wait(15)
            raise AssertionError("the worker did not stop on SIGTERM within 15 s:\n"
                                 + log_path.read_text()[-6000:]) from None
        finally:
            log.close()
    assert state["result"]["revoked_logbooks"] == LOGBOOKS
    assert len(refused) == LOGBOOKS
    # The job's end is after the commit that revoked every logbook: a scan sent later and
    # still accepted would be a refusal that comes late (a cache, a stale read).
    ended = datetime.fromisoformat(state["ended_at"]).timestamp()
    late = {i: sent - ended for i, sent in accepted_sent.items() if sent > ended}
    assert not late, f"scans sent after the job ended were accepted: {late}"
    took, answered = ended - t0, max(refused.values()) - t0
    print(f"revoked {took * 1000:.0f} ms after the request; the last probe heard 410 after "
          f"{answered * 1000:.0f} ms")
    assert took < LIMIT, f"the logbooks were revoked {took * 1000:.0f} ms after the request"
