"""Shared parts of the fault tests: citizens written straight to the database (thousands in a
second), a venue through the real API, registrar feeds that reconnect and resume, and scan
load from several threads with every request bounded by a client timeout."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import date

import httpx2 as httpx
import orjson
from sqlalchemy import insert, select
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from models.citizens import hash_token
from models.crypto import id_lookup
from models.idnumber import make_id_number
from models.tables import Checkin, Citizen, utcnow
from tests.conftest import ADMIN

# A request that takes longer than this is a hang, whatever the server is going through.
REQUEST_TIMEOUT = 10.0


def id_number(seq: int) -> str:
    """A valid, unique ID number for each seq < 1000 × 28 × 12 × 40."""
    day, rest = seq // 1000, seq % 1000
    born = date(1960 + day // 336, 1 + day // 28 % 12, 1 + day % 28)
    return make_id_number("110101", born, rest)


def make_citizens(engine, count: int, *, first: int = 0, name: str = "访客") -> list[dict]:
    """`count` green citizens in one insert; each with its bearer headers."""
    rows, out = [], []
    now = utcnow()
    for seq in range(first, first + count):
        token = f"sbc_fault_{seq}_{time.monotonic_ns()}"
        rows.append({"name": f"{name}{seq}", "id_number": id_number(seq), "phone": "",
                     "status": "green", "popup_kind": None, "reason": "", "status_at": now,
                     "token_hash": hash_token(token), "created_at": now})
        out.append({"id_number": id_number(seq), "token": token,
                    "headers": {"Authorization": f"Bearer {token}"}})
    with engine.begin() as conn:
        conn.execute(insert(Citizen.__table__), rows)
        ids = dict(conn.execute(select(Citizen.id_hash, Citizen.id).where(
            Citizen.id_hash.in_([id_lookup(c["id_number"]) for c in out]))).all())
    for c in out:
        c["id"] = ids[id_lookup(c["id_number"])]
    return out


def make_venue(base_url: str, owner: dict, logbooks: int) -> tuple[dict, list[dict]]:
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:
        r = http.post("/api/venues", headers=owner["headers"], json={
            "name": "故障演练商场", "address": "x", "district": "东城区", "category": "mall"})
        assert r.status_code == 201, r.text
        venue = r.json()
        books = []
        for i in range(logbooks):
            r = http.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                          json={"label": f"入口{i}"})
            assert r.status_code == 201, r.text
            books.append(r.json())
    return venue, books


def venue_checkins(engine, venue_id: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(Checkin.id).where(Checkin.venue_id == venue_id)
                                 .order_by(Checkin.id)).scalars())


class Registrar(threading.Thread):
    """A registrar's console (or, with `path`, any numbered feed such as /ws/me): a feed that
    reconnects (to the next URL in `ws_urls`)
    whenever the connection ends, resuming with the last id it saw. Records every check-in
    id in arrival order, and any id that is not above the last one (a duplicate or a
    reordering) as an error."""

    def __init__(self, ws_urls: list[str], venue_id: int | None, headers: dict, name: str,
                 *, path: str | None = None, kind: str = "checkin",
                 hop: float | None = None):
        super().__init__(daemon=True, name=name)
        self.ws_urls = ws_urls
        self.path = path or f"/ws/venues/{venue_id}/feed"
        self.kind = kind  # the numbered events to collect
        self.hop = hop  # leave and resume on the next URL every `hop` seconds
        self.headers = headers
        self.seen: list[int] = []
        self.errors: list[str] = []
        self.connects = 0
        self.last = 0
        self.expected: set[int] | None = None
        self.ready = threading.Event()
        self._halt = threading.Event()
        self._turn = 0

    def wait_for(self, expected: set[int], timeout: float) -> bool:
        """Until every expected id arrived (or the timeout); then the thread ends."""
        self.expected = set(expected)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.expected.issubset(self.seen):
            time.sleep(0.05)
        self._halt.set()
        self.join(10)
        return self.expected.issubset(self.seen)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        while not self._halt.is_set():
            url = self.ws_urls[self._turn % len(self.ws_urls)]
            try:
                with connect(f"{url}{self.path}?after={self.last}",
                             additional_headers=self.headers, open_timeout=5,
                             close_timeout=1) as ws:
                    self.connects += 1
                    self._read(ws)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            if not self._halt.is_set():
                self._turn += 1  # the next server in the list (they share one database)
                time.sleep(0.1)

    def _read(self, ws) -> None:
        leave = None if self.hop is None else time.monotonic() + self.hop
        while not self._halt.is_set() and (leave is None or time.monotonic() < leave):
            try:
                event = orjson.loads(ws.recv(timeout=0.25))
            except TimeoutError:
                continue
            if event["type"] == "ready":
                self.ready.set()
            elif event["type"] == self.kind:
                if event["id"] <= self.last:
                    self.errors.append(f"{self.name}: id {event['id']} after {self.last}")
                else:
                    self.last = event["id"]
                self.seen.append(event["id"])


def start_registrars(ws_urls_each: list[list[str]], venue_id: int, headers: dict
                     ) -> list[Registrar]:
    registrars = [Registrar(urls, venue_id, headers, f"registrar-{i}")
                  for i, urls in enumerate(ws_urls_each)]
    for r in registrars:
        r.start()
    for r in registrars:
        assert r.ready.wait(15), f"{r.name} never got ready"
    return registrars


@dataclass
class Answer:
    status: int | None  # None: no answer (transport error or client timeout)
    body: dict | None
    seconds: float
    error: str | None = None
    server: str = ""
    started: float = 0.0
    citizen_id: int = 0
    code: str = ""


@dataclass
class ScanLoad:
    """Scans from `threads` threads until stopped. Scan k is citizen k % N at logbook
    k // N % L, so no (citizen, logbook) pair repeats (no 60 s rule) before N × L scans.

    `retry_elsewhere`: a request that got no answer (its server died) is sent again to the
    next server, as a phone would retry; the 60 s rule makes that safe (200 and the same
    check-in when the first attempt had committed)."""

    base_urls: list[str]
    citizens: list[dict]
    codes: list[str]
    threads: int = 6
    pause: float = 0.01
    retry_elsewhere: bool = False
    answers: list[Answer] = field(default_factory=list)
    _halt: threading.Event = field(default_factory=threading.Event)
    _counter: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> ScanLoad:
        for i in range(self.threads):
            t = threading.Thread(target=self._work, args=(i,), daemon=True, name=f"scan-{i}")
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> list[Answer]:
        self._halt.set()
        for t in self._workers:
            t.join(REQUEST_TIMEOUT * 3)
            assert not t.is_alive(), "a scan thread hung"
        return self.answers

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.status == status)

    def wait_for(self, predicate, timeout: float) -> bool:
        """Until an answer matching `predicate` has come (True), or the timeout (False): what
        a test waits for instead of sleeping a guess at how long the servers take."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            with self._lock:
                fresh, seen = self.answers[seen:], len(self.answers)
            if any(predicate(a) for a in fresh):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _post(self, clients: list[httpx.Client], server: int, citizen: dict, code: str
              ) -> Answer:
        t0 = time.monotonic()
        try:
            r = clients[server].post("/api/scan", headers=citizen["headers"],
                                     json={"code": code})
            body = r.json()
            return Answer(r.status_code, body, time.monotonic() - t0,
                          server=self.base_urls[server], started=t0,
                          citizen_id=citizen["id"], code=code)
        except (httpx.HTTPError, ValueError) as exc:
            return Answer(None, None, time.monotonic() - t0, error=repr(exc),
                          server=self.base_urls[server], started=t0,
                          citizen_id=citizen["id"], code=code)

    def _work(self, index: int) -> None:
        n, books = len(self.citizens), len(self.codes)
        clients = [httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) for url in self.base_urls]
        try:
            while not self._halt.is_set():
                k = next(self._counter)
                if k >= n * books:
                    return
                citizen, code = self.citizens[k % n], self.codes[k // n % books]
                server = k % len(self.base_urls)
                answer = self._post(clients, server, citizen, code)
                tries = 1
                while (answer.status is None and self.retry_elsewhere
                       and tries < 2 * len(self.base_urls)):
                    with self._lock:
                        self.answers.append(answer)
                    server = (server + 1) % len(self.base_urls)
                    answer = self._post(clients, server, citizen, code)
                    tries += 1
                with self._lock:
                    self.answers.append(answer)
                time.sleep(self.pause)
        finally:
            for c in clients:
                c.close()


def accepted_ids(answers: list[Answer], statuses=(201,)) -> list[int]:
    return [a.body["checkin_id"] for a in answers if a.status in statuses]


def assert_bounded(answers: list[Answer], allowed=(201, 503)) -> None:
    """Every request answered in time with an allowed status; every 503 in the contract's
    format (`unavailable`, a message, Retry-After is checked where it matters)."""
    assert answers, "no scans were sent"
    late = [a for a in answers if a.status is None]
    assert not late, f"{len(late)} requests got no answer, e.g. {late[0]}"
    wrong = [a for a in answers if a.status not in allowed]
    assert not wrong, f"unexpected answers: {[(a.status, a.body) for a in wrong[:5]]}"
    for a in answers:
        if a.status == 503:
            assert a.body["error"] == "unavailable" and a.body["message"], a.body
    slowest = max(a.seconds for a in answers)
    assert slowest < REQUEST_TIMEOUT, slowest


def official(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=ADMIN, timeout=REQUEST_TIMEOUT)


def summary(answers: list[Answer], down: float, up: float) -> dict:
    """Counts by status before, during and after an outage, and the slowest answer."""
    out: dict = {}
    for name, part in (("before", [a for a in answers if a.started < down]),
                       ("during", [a for a in answers if down <= a.started < up]),
                       ("after", [a for a in answers if a.started >= up])):
        counts: dict = {}
        for a in part:
            counts[a.status] = counts.get(a.status, 0) + 1
        out[name] = {"by_status": counts,
                     "slowest_s": round(max((a.seconds for a in part), default=0), 3)}
    return out
