"""A lean HTTP/1.1 load generator: raw uvloop sockets, keep-alive, pre-built request bytes.

Run as its own process (`python -m bench.loadgen SPEC OUT`), never inside the server's: a
Python HTTP client library costs more CPU per request than the server under test, so it would
measure itself. One request in flight per connection (no pipelining), many connections.

Phases (from the spec, a JSON file):
- closed: every connection sends its next request as soon as the previous answer arrives
  (the maximum rate);
- open: requests are due at a fixed rate whatever the server does; a due request waits for a
  free connection, and its latency counts from when it was *due* (no coordinated omission).

Request k goes to citizen k % N at logbook (k % N + k // N) % L: the (citizen, logbook) pair
never repeats before N × L requests, so no scan falls under the 60 s rule, and consecutive
requests spread over every logbook. `seq` carries k across phases and runs.

Output (a JSON file): per phase, the requests sent, the answers by status, errors, the
achieved rate, and per answer (due time, answer time, status, checkin id or -1) for the
orchestrator, which matches check-in ids against the feeds. Times are time.monotonic(),
which is CLOCK_MONOTONIC: one clock for every process on the machine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import time
from array import array
from pathlib import Path

import orjson

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the venv
    uvloop = None

HEADER_END = b"\r\n\r\n"


class Phase:
    """What one phase records. Arrays of doubles and ints: cheap to append, cheap to dump."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.due = array("d")
        self.done = array("d")
        self.status = array("i")
        self.ids = array("q")
        self.sent = 0
        self.errors = 0
        self.reconnects = 0
        self.started = 0.0
        self.ended = 0.0
        self.cpu = 0.0  # this process's CPU seconds over the phase

    def report(self) -> dict:
        by_status = collections.Counter(self.status)
        elapsed = max(self.ended - self.started, 1e-9)
        return {
            "name": self.spec["name"],
            "mode": self.spec["mode"],
            "target_rate": self.spec.get("rate"),
            "connections": self.spec["connections"],
            "duration_s": round(elapsed, 3),
            "sent": self.sent,
            "answered": len(self.status),
            "errors": self.errors,
            "reconnects": self.reconnects,
            "by_status": {str(k): v for k, v in sorted(by_status.items())},
            "rate": len(self.status) / elapsed,
            "loadgen_cpu": round(self.cpu / elapsed, 3),
            "due": self.due.tolist(),
            "done": self.done.tolist(),
            "status": self.status.tolist(),
            "ids": self.ids.tolist(),
        }


class Requests:
    """Pre-built request bytes: one head per citizen (its bearer token), one tail per logbook
    (Content-Length and the JSON body with the logbook's code)."""

    def __init__(self, spec: dict):
        host = f"{spec['host']}:{spec['port']}".encode()
        path = spec.get("path", "/api/scan").encode()
        self.heads = [
            b"POST " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nAuthorization: Bearer "
            + token.encode() + b"\r\nContent-Type: application/json\r\n"
            for token in spec["tokens"]
        ]
        self.tails = []
        for code in spec["codes"]:
            body = orjson.dumps({"code": code})
            self.tails.append(b"Content-Length: " + str(len(body)).encode() + HEADER_END + body)
        self.n = len(self.heads)
        self.l = len(self.tails)
        self.seq = spec.get("seq", 0)

    def next(self) -> bytes:
        k = self.seq
        self.seq += 1
        c = k % self.n
        return self.heads[c] + self.tails[(c + k // self.n) % self.l]


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, gen: LoadGen):
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.due = 0.0
        self.busy = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, data: bytes, due: float) -> None:
        self.due = due
        self.busy = True
        self.gen.phase.sent += 1
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(HEADER_END)
            if end < 0:
                return
            head = bytes(buf[:end]).lower() + b"\r\n"
            i = head.find(b"\r\ncontent-length:")
            length = int(head[i + 17: head.find(b"\r\n", i + 17)]) if i >= 0 else 0
            total = end + 4 + length
            if len(buf) < total:
                return
            status = int(head[9:12])
            body = bytes(buf[end + 4: total])
            del buf[:total]
            self.answered(status, body)

    def answered(self, status: int, body: bytes) -> None:
        now = time.monotonic()
        checkin_id = -1
        if status in (200, 201) and body:
            try:
                checkin_id = orjson.loads(body).get("checkin_id", -1)
            except orjson.JSONDecodeError:
                pass
        phase = self.gen.phase
        phase.due.append(self.due)
        phase.done.append(now)
        phase.status.append(status)
        phase.ids.append(checkin_id if isinstance(checkin_id, int) else -1)
        self.busy = False
        self.gen.idle(self)

    def connection_lost(self, exc) -> None:
        if self.busy:
            self.gen.phase.errors += 1
            self.busy = False
        self.gen.lost(self)
        if not self.closed.done():
            self.closed.set_result(None)


class LoadGen:
    def __init__(self, spec: dict):
        self.spec = spec
        self.requests = Requests(spec)
        self.conns: list[Connection] = []
        self.free: collections.deque[Connection] = collections.deque()
        self.backlog: collections.deque[float] = collections.deque()
        self.phase: Phase | None = None
        self.running = False
        self.mode = "closed"

    async def connect(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        while len(self.conns) < n:
            _, conn = await loop.create_connection(
                lambda: Connection(self), self.spec["host"], self.spec["port"])
            self.conns.append(conn)
            self.free.append(conn)

    def idle(self, conn: Connection) -> None:
        if not self.running:
            self.free.append(conn)
            self._maybe_drained()
            return
        if self.mode == "closed":
            if self.phase.sent < self.limit:
                conn.send(self.requests.next(), time.monotonic())
            else:
                self.free.append(conn)
                if self._done is not None and not self._done.done():
                    self._done.set_result(None)
        elif self.backlog:
            conn.send(self.requests.next(), self.backlog.popleft())
        else:
            self.free.append(conn)

    def lost(self, conn: Connection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        if conn in self.free:
            self.free.remove(conn)
        if self.running:  # keep the concurrency: a server may close after an error answer
            self.phase.reconnects += 1
            self._tasks.add(task := asyncio.get_running_loop().create_task(self._replace()))
            task.add_done_callback(self._tasks.discard)
        self._maybe_drained()

    async def _replace(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(self), self.spec["host"], self.spec["port"])
        except OSError:
            self.phase.errors += 1
            return
        self.conns.append(conn)
        self.idle(conn)

    def _maybe_drained(self) -> None:
        if self._drain is not None and not any(c.busy for c in self.conns):
            if not self._drain.done():
                self._drain.set_result(None)

    _drain: asyncio.Future | None = None
    _tasks: set[asyncio.Task] = set()
    _done: asyncio.Future | None = None
    limit: float = float("inf")

    async def run_phase(self, spec: dict) -> dict:
        connections = spec["connections"]
        await self.connect(connections)
        self.phase = phase = Phase(spec)
        self.mode = spec["mode"]
        self.backlog.clear()
        self._drain = None
        duration = spec["duration"]
        phase.started = time.monotonic()
        cpu = time.process_time()
        self.running = True
        if self.mode == "closed":
            # "requests": a warm-up that touches every token once stops when it has sent them
            self.limit = spec.get("requests") or float("inf")
            self._done = asyncio.get_running_loop().create_future()
            while self.free and phase.sent < self.limit:
                self.free.popleft().send(self.requests.next(), time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done, duration)
            self._done = None
        else:
            await self._open_loop(spec["rate"], duration)
        self.running = False
        stopped = time.monotonic()
        phase.ended = stopped  # the rate counts answers to requests sent before the stop
        self._drain = asyncio.get_running_loop().create_future()
        self._maybe_drained()
        try:
            await asyncio.wait_for(self._drain, spec.get("drain", 15))
        except TimeoutError:
            pass
        phase.errors += len(self.backlog)  # due but never sent: the server fell behind
        self.backlog.clear()
        if phase.status:
            # Answers that came after the stop still belong to the phase, and so does the time.
            phase.ended = max(stopped, phase.done[-1])
        phase.cpu = time.process_time() - cpu
        report = phase.report()
        report["seq_end"] = self.requests.seq
        return report

    async def _open_loop(self, rate: float, duration: float) -> None:
        start = time.monotonic()
        issued = 0
        total = int(rate * duration)
        while issued < total:
            now = time.monotonic()
            due_count = min(int((now - start) * rate) + 1, total) - issued
            for _ in range(due_count):
                due = start + issued / rate
                issued += 1
                if self.free and not self.backlog:
                    self.free.popleft().send(self.requests.next(), due)
                else:
                    self.backlog.append(due)
            # Ticks of at least 1 ms (the loop's timer resolution; shorter ones spin): what
            # fell due meanwhile goes out together, each request keeping its own due time.
            next_due = start + issued / rate
            await asyncio.sleep(max(0.001, next_due - time.monotonic()))

    async def close(self) -> None:
        for conn in list(self.conns):
            conn.transport.close()
        for conn in list(self.conns):
            await asyncio.wait([conn.closed], timeout=2)


async def main(spec_path: str, out_path: str) -> None:
    spec = orjson.loads(Path(spec_path).read_bytes())
    gen = LoadGen(spec)
    reports = []
    for phase in spec["phases"]:
        if phase.get("pause"):
            await asyncio.sleep(phase["pause"])
        print(f"phase {phase['name']}", flush=True)  # the orchestrator may start a profiler
        reports.append(await gen.run_phase(phase))
        print(f"end {phase['name']}", flush=True)
        # a line per phase on stderr so a person watching sees progress
        r = reports[-1]
        print(f"loadgen: {r['name']}: {r['rate']:.0f}/s, {r['by_status']}, "
              f"errors {r['errors']}", file=sys.stderr, flush=True)
    await gen.close()
    Path(out_path).write_bytes(orjson.dumps({"phases": reports, "seq": gen.requests.seq}))


if __name__ == "__main__":
    if uvloop is not None:
        uvloop.install()
    asyncio.run(main(sys.argv[1], sys.argv[2]))
