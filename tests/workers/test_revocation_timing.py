"""Real processes: uvicorn (web.main:app) and the RQ worker (workers.runner, forking a horse
per job). A registrar with 100 logbooks turns red while every logbook is being scanned: the
last of them must refuse scans (410 logbook_revoked) within a second of the request."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx2 as httpx

from bench.exposure import Prober
from tests.conftest import ADMIN
from tests.servers import ROOT, running_server

LOGBOOKS = 100
PERIOD = 0.05  # each logbook is scanned every 50 ms (staggered): the figure includes ≤ 50 ms


def _wait_job(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/api/admin/jobs/{job_id}", headers=ADMIN).json()
        if state["state"] in ("finished", "failed"):
            return state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


async def _measure(port: int, codes: list[str], tokens: list[str], id_number: str,
                   url: str) -> tuple[float, dict[int, float], str]:
    probers = [Prober("127.0.0.1", port, c, t) for c, t in zip(codes, tokens, strict=True)]
    warm = await asyncio.gather(*(p.scan() for p in probers))
    assert all(status in (200, 201) for status, _ in warm)
    refused: dict[int, float] = {}

    async def probe(i: int) -> None:
        await asyncio.sleep(PERIOD * i / len(probers))
        while True:
            due = time.monotonic() + PERIOD
            status, body = await probers[i].scan()
            if status == 410:
                assert b"logbook_revoked" in body
                refused[i] = time.monotonic()
                return
            assert status in (200, 201), body
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    tasks = [asyncio.create_task(probe(i)) for i in range(len(probers))]
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=url, headers=ADMIN) as http:
        t0 = time.monotonic()
        r = await http.post("/api/admin/status-changes", json={"changes": [
            {"id_number": id_number, "status": "red", "reason": "确诊病例密接"}]})
        assert r.status_code == 202, r.text
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    for p in probers:
        p.close()
    return t0, refused, r.json()["job_id"]


def test_registrar_with_100_logbooks_is_refused_within_a_second(client, people):
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
    worker = subprocess.Popen([sys.executable, "-m", "workers.runner", "--no-cron"], cwd=ROOT,
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        with running_server(env=env) as server:
            warm = httpx.post(f"{server.url}/api/admin/status-changes", headers=ADMIN, json={
                "changes": [{"id_number": bystander["id_number"], "status": "yellow",
                             "reason": "预热 / warm-up"}]}).json()
            assert _wait_job(server.url, warm["job_id"])["state"] == "finished"
            t0, refused, job_id = asyncio.run(_measure(
                server.port, codes, scanners, owner["id_number"], server.url))
            state = _wait_job(server.url, job_id)
    finally:
        worker.terminate()
        worker.wait(15)
    assert state["result"]["revoked_logbooks"] == LOGBOOKS
    assert len(refused) == LOGBOOKS
    last = max(refused.values()) - t0
    assert last < 1.0, f"the last logbook refused scans {last * 1000:.0f} ms after the request"
