"""GET /openapi.json: served, well formed, and complete — every route of the app is
documented and every documented operation exists (this test fails when someone adds an
endpoint without its row in web/openapi.py)."""

from __future__ import annotations

import re

import jsonschema_rs
from starlette.routing import Match, Mount, Route, WebSocketRoute

from web.openapi import DOCUMENT

ERROR_REF = {"$ref": "#/components/schemas/Error"}
UNDOCUMENTED_MOUNTS = {"/static"}  # static files: not an API
# /healthz answers 503 with its own report (which dependency is down), not an error.


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _documented() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in DOCUMENT["paths"].items()
            for method in item]


def _matches(route, method: str, path: str) -> bool:
    kind = "websocket" if isinstance(route, WebSocketRoute) else "http"
    match, _ = route.matches({"type": kind, "path": path, "method": method})
    return match == Match.FULL


def test_served_as_json(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == DOCUMENT
    assert DOCUMENT["openapi"].startswith("3.1")


def test_every_route_is_documented_and_every_operation_exists(app):
    documented = _documented()
    sockets = list(DOCUMENT["x-websockets"]["paths"])
    missing, sockets_missing = [], []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path in UNDOCUMENTED_MOUNTS, f"document the mount {route.path}"
        elif isinstance(route, WebSocketRoute):
            if not any(_matches(route, "GET", _concrete(p)) for p in sockets):
                sockets_missing.append(route.path)
        elif isinstance(route, Route):
            for method in sorted(route.methods - {"HEAD"}):
                if not any(m == method and _matches(route, method, _concrete(p))
                           for m, p in documented):
                    missing.append(f"{method} {route.path}")
    assert not missing, f"routes missing from web/openapi.py: {missing}"
    assert not sockets_missing, f"WebSockets missing from x-websockets: {sockets_missing}"

    routes = [r for r in app.routes if isinstance(r, Route)]
    stale = [f"{m} {p}" for m, p in documented
             if not any(_matches(r, m, _concrete(p)) for r in routes)]
    assert not stale, f"documented but not in the app: {stale}"
    ws_routes = [r for r in app.routes if isinstance(r, WebSocketRoute)]
    stale_ws = [p for p in sockets if not any(_matches(r, "GET", _concrete(p))
                                             for r in ws_routes)]
    assert not stale_ws, f"documented WebSockets not in the app: {stale_ws}"


def _refs(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.add(node["$ref"])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)
    return out


def test_well_formed():
    components = DOCUMENT["components"]
    for ref in _refs(DOCUMENT, set()):
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in components[section], ref
    for name, schema in components["schemas"].items():
        # Compiles as JSON Schema 2020-12, with the references it makes resolved.
        jsonschema_rs.validator_for({**schema, "components": components})
        assert schema["type"] == "object", name
    for path, item in DOCUMENT["paths"].items():
        templated = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, (method, path)
            assert op["responses"] and op["summary"], (method, path)
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status), (method, path, status)
                if int(status) >= 400 and "$ref" not in response and path != "/healthz":
                    json_error = response.get("content", {}).get("application/json")
                    assert json_error in (None, {"schema": ERROR_REF}), (
                        f"{method} {path} {status}: JSON errors are the contract's Error")


def test_errors_are_the_contracts():
    error = DOCUMENT["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    for name, response in DOCUMENT["components"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, name
    scan = DOCUMENT["paths"]["/api/scan"]["post"]
    assert {"401", "404", "410", "422", "429"} <= set(scan["responses"])
    assert DOCUMENT["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
