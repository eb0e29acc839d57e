"""Where the server's event-loop thread spends a scan: py-spy samples (raw, collapsed stacks)
folded into the parts of the hot path, then scaled to microseconds of CPU per accepted scan.

Each sample goes to the first part that matches walking its stack from the innermost frame
out, so a rate-limiter call inside the scan endpoint counts as the rate limiter, and the
response going out through the middlewares counts as the HTTP server. Approximate: py-spy
sees a thread that waits for the GIL as busy.

    python -m bench.profile FILE [--us-per-scan N]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

# (part, pattern of a frame's file). Frames look like "Hub._listen (realtime/hub.py:140)".
PARTS = [
    ("rate limiter", r"\(web/ratelimit\.py"),
    ("auth (token → citizen)", r"\(web/auth\.py"),
    ("scan endpoint (body, response)", r"\(web/api_citizen\.py|\(web/responses\.py|\(models/"),
    ("reference endpoint (PUBLISH)", r"\(bench/thin_ref\.py"),
    ("check-in writer hand-off", r"\(ingest/|\(anyio/to_thread|\(threading\.py"),
    ("hub (Redis → queues)", r"\(realtime/hub\.py"),
    ("feed fan-out (WebSocket frames)",
     r"\(realtime/feed\.py|\(starlette/websockets\.py|protocols/websockets|\(websockets/"),
    ("security middleware", r"\(web/security\.py"),
    ("session middleware", r"middleware/sessions\.py"),
    ("HTTP server and routing", r"\(uvicorn/|\(starlette/"),
]
# Library frames that belong to whichever part called them (else to themselves).
WEAK = [("Redis client", r"\(redis/")]
LOOP = "event loop and socket I/O (uvloop)"
_parts = [(name, re.compile(pattern)) for name, pattern in PARTS]
_weak = [(name, re.compile(pattern)) for name, pattern in WEAK]


def _part(frames: list[str]) -> str:
    # Only what runs inside the event loop: uvicorn's start-up frames sit under every sample.
    for i, frame in enumerate(frames):
        if frame.startswith("Runner.run ("):
            frames = frames[i + 1:]
            break
    weak = None
    for frame in reversed(frames):
        for name, pattern in _parts:
            if pattern.search(frame):
                return name
        if weak is None:
            weak = next((name for name, pattern in _weak if pattern.search(frame)), None)
    return weak or LOOP


def breakdown(path: str) -> dict[str, dict[str, float]]:
    """{"loop": {part: share}, "threads": {"other threads": share of all samples}}."""
    loop: Counter[str] = Counter()
    other = total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            # py-spy --subprocesses: the server's own stacks start with one "process" frame,
            # its children's with two or more.
            if frames[0].startswith("process "):
                frames = frames[1:]
            if not frames or not frames[0].startswith("_run_module_as_main"):
                other += n  # not the main thread of the server process
                continue
            loop[_part(frames)] += n
    loop_total = sum(loop.values()) or 1
    return {"loop": {k: v / loop_total for k, v in loop.most_common()},
            "other_threads_share_of_samples": other / (total or 1)}


def table(shares: dict[str, float], us_per_scan: float | None) -> str:
    rows = ["| part of the event-loop thread | share | µs per scan |", "|---|---:|---:|"]
    for name, share in shares.items():
        us = f"{share * us_per_scan:.0f}" if us_per_scan else "–"
        rows.append(f"| {name} | {share * 100:.0f} % | {us} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--us-per-scan", type=float,
                        help="the loop thread's CPU µs per accepted scan (from the report)")
    args = parser.parse_args()
    result = breakdown(args.file)
    print(table(result["loop"], args.us_per_scan))


if __name__ == "__main__":
    main()
