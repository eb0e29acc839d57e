"""Property-based API testing with schemathesis against a real uvicorn process, driven by
GET /openapi.json: for every documented operation, generated requests (valid and invalid) as
an official, as a citizen (who owns a venue with a logbook) and anonymously. No 5xx; every
status, content type and body as documented; every error in the contract's format.

Bounded: a few examples per operation and mode, so the whole module runs in well under two
minutes on a small machine. SCANBOOK_SCHEMATHESIS_EXAMPLES raises the budget for a deeper run.
"""

from __future__ import annotations

import os

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN
from tests.realtime.test_processes import _setup
from tests.servers import running_server
from web.openapi import DOCUMENT

EXAMPLES = int(os.environ.get("SCANBOOK_SCHEMATHESIS_EXAMPLES", "25"))
# The schemathesis pytest plugin's parametrize() does not run on pytest 9 (it rewrites
# node._nodeid); the operations' Hypothesis strategies are used directly instead.
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@schemathesis.check
def contract_error_format(ctx, response, case) -> bool | None:
    """Every error is {"error": code, "message": text}: JSON, except the HTML pages' own
    error pages (documented as text/html) and /healthz's 503 report."""
    if response.status_code < 400 or case.path == "/healthz":
        return None
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media == "text/html" and case.operation.tags == ["pages"]:
        return None
    assert media == "application/json", f"a {response.status_code} answered as {media!r}"
    body = orjson.loads(response.content)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(
        body.get("message"), str), f"not the contract's error format: {body!r}"
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, contract_error_format]


@pytest.fixture(scope="module")
def server():
    with running_server() as running:
        yield running


@pytest.fixture
def world(server):
    """A citizen who owns a venue with a logbook (the database is wiped between tests)."""
    owner, venue, (book,), (guest,) = _setup(server.url, 1)
    return {"official": ADMIN, "owner": owner, "citizen": guest, "anonymous": {},
            "venue": venue["id"], "logbook": book["id"], "code": book["token"]}


def _aim(case, world) -> None:
    """Point a generated request at objects that exist, so it gets past the 404s."""
    params = case.path_parameters or {}
    if "id" in params:
        params["id"] = world["venue"] if case.path.startswith("/api/venues") else world["logbook"]
    if case.path == "/api/scan" and isinstance(case.body, dict):
        case.body["code"] = world["code"]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_api(operation, world, server):
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases, who=st.sampled_from(["official", "owner", "citizen", "anonymous"]),
           aim=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case, who, aim):
        if aim:
            _aim(case, world)
        case.call_and_validate(base_url=server.url, headers=world[who], checks=CHECKS)

    run()
