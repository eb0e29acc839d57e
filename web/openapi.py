"""The OpenAPI 3.1 document of the whole HTTP surface, served at GET /openapi.json.

Built from the operation table below (one `_op(...)` per method and path), the shared schemas
and the contract's error responses. The WebSockets, which OpenAPI cannot describe, are listed
under `x-websockets`. tests/web/test_openapi.py fails when the app has a route that is not
here (or the other way round), so add a row with every new endpoint.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.responses import JSON

JSON_TYPE = "application/json"
HTML = "text/html"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}  # `integer` columns


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _null(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(required: dict, optional: dict | None = None, **extra: Any) -> dict:
    """An object with these required and optional properties (others allowed)."""
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}, **extra}


def _items(schema: dict, **more: dict) -> dict:
    return _obj({"items": {"type": "array", "items": schema}, **more})


def _text(max_length: int, min_length: int = 1) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


STATUS = {"type": "string", "enum": ["green", "yellow", "red", "popup"]}
# A check-in's status also takes "unknown": an unregistered visitor's proxy check-in (no
# status to show; alert true: the registrar checks the person by hand). docs/registrars.md
CHECKIN_STATUS = {"type": "string", "enum": [*STATUS["enum"], "unknown"]}
POPUP_KIND = _null({"type": "string", "enum": ["travel", "risk_area"]})
ID_NUMBER = {"type": "string", "pattern": "^[0-9]{17}[0-9Xx]$",
             "description": "居民身份证号码 (GB 11643, 18 characters, check digit)"}
MASKED_ID = {"type": "string", "description": "first 2 and last 2 characters, 14 `*` between"}
BILINGUAL = _obj({"zh": STR, "en": STR})
ROLE = {"type": "string", "enum": ["admin", "operator", "tracer", "viewer"],
        "description": "viewer < operator < tracer < admin (each does what the one before "
                       "does, and more)"}

ERROR_CODES = [
    "unauthenticated", "forbidden", "registrar_not_green", "not_found", "unknown_code",
    "method_not_allowed", "conflict", "logbook_suspended", "logbook_revoked",
    "logbook_deleted", "payload_too_large", "invalid_id_number", "validation_error",
    "rate_limited", "unavailable", "code_expired", "invitation_expired",
]

SCHEMAS: dict[str, dict] = {
    "Error": _obj({"error": {"type": "string", "enum": ERROR_CODES}, "message": STR},
                  {"detail": {}, "retry_after": INT},
                  description="Every error: a contract code and a human-readable message."),
    "Card": _obj({"id": ID, "name_masked": STR, "id_masked": MASKED_ID, "status": STATUS,
                  "popup_kind": POPUP_KIND, "reason": _null(STR), "minor": BOOL,
                  "photo_label": _null(STR)},
                 {"status_at": _null(TIME), "label": BILINGUAL, "abnormal": BOOL,
                  "advice": {}, "action": {}, "itinerary_url": STR, "photo_url": _null(STR),
                  "signed_in": BOOL, "itinerary": _null(_ref("ItineraryCheck"))}),
    "CitizenCreated": _obj({"id": ID, "token": STR, "name_masked": STR, "id_masked": MASKED_ID,
                            "minor": BOOL}, {"status": STATUS}),
    "Job": _obj({"state": {"type": "string",
                           "enum": ["queued", "started", "finished", "failed"]},
                 "result": {}},
                {"id": STR, "progress": {}, "error": STR, "batch_id": INT,
                 "enqueued_at": _null(STR), "ended_at": _null(STR), "retries_left": {}}),
    "Queued": _obj({"job_id": STR, "batch_id": INT}),
    "ViolationQueued": _obj({"job_id": STR, "batch_id": INT, "violation_id": INT,
                             "violation": _ref("Violation")}),
    "Violation": _obj({"id": ID, "citizen_id": INT, "reason": STR, "active": BOOL,
                       "created_at": TIME},
                      {"actor": STR, "lifted_at": _null(TIME), "lifted_by": _null(STR),
                       "lift_reason": _null(STR)}),
    "Batch": _obj({"id": ID, "kind": STR, "result": {}},
                  {"actor": STR, "job_id": _null(STR), "created_at": TIME,
                   "finished_at": _null(TIME)}),
    "Trace": _obj({"citizen": _null(_obj({"id": ID, "name": STR, "id_number": STR,
                                          "status": STATUS})),
                   "checkins": {"type": "array", "items": _obj(
                       {"id": ID, "at": TIME, "venue_id": INT},
                       {"status": CHECKIN_STATUS,
                        "visitor": _null(_obj({"id": ID, "name": STR}))})}},
                  {"status_history": {"type": "array"}, "audit_id": INT,
                   "visitors": {"type": "array", "items": _obj(
                       {"id": ID, "name": STR, "id_number": STR,
                        "citizen_id": _null(INT)})}},
                  description="`citizen` is null when nobody registered the number but "
                              "registrars' proxy check-ins recorded visits under it "
                              "(`visitors`: the names given; their visits carry `visitor`)."),
    "Actor": _obj({"kind": {"type": "string", "enum": ["official", "citizen", "system"]},
                   "id": _null(INT), "name": _null(STR)},
                  {"legacy": {**BOOL, "description": "a row from before named accounts: the "
                              "shared token; any name on it was typed by the client"}}),
    "Official": _obj({"id": ID, "name": STR, "role": ROLE, "district": _null(STR),
                      "active": BOOL},
                     {"login": STR, "bootstrap": BOOL, "created_at": TIME,
                      "disabled_at": _null(TIME), "password": BOOL, "totp": BOOL,
                      "token": {**STR, "description": "shown once (creation, rotation)"}}),
    "AuditEntry": _obj({"id": ID, "at": TIME, "actor": _ref("Actor"), "action": STR},
                       {"target": STR, "citizen_id": _null(INT), "purpose": STR, "detail": {}}),
    "Notice": _obj({"type": {"type": "string", "enum": ["notice", "status"]}, "id": ID,
                    "at": TIME},
                   {"text": STR, "status": STATUS, "popup_kind": POPUP_KIND,
                    "reason": _null(STR)}),
    "Venue": _obj({"id": ID, "name": STR, "address": STR, "district": STR, "category": STR,
                   "capacity": _null(INT)},
                  {"owner_id": INT, "created_at": TIME,
                   "role": {"type": "string", "enum": ["owner", "co"]},
                   "max_stay_minutes": INT, "occupancy": INT, "full": BOOL}),
    "Invitation": _obj({"id": ID, "venue_id": INT, "citizen_id": INT,
                        "role": {"const": "co"}, "active": BOOL,
                        "state": {"type": "string", "enum": ["pending", "accepted", "declined",
                                                             "withdrawn", "expired"]}},
                       {"created_at": TIME, "expires_at": TIME},
                       description="An invitation to be a co-registrar. The inviter's answer "
                                   "is the same whoever the citizen id names (green, abnormal "
                                   "or nobody); `active` turns true once the invitee accepts. "
                                   "It can be accepted before `expires_at` "
                                   "(SCANBOOK_INVITATION_DAYS after it was made, 7 by "
                                   "default); a pending one past it reads `expired`."),
    "MyInvitation": _obj({"id": ID, "state": STR, "created_at": TIME, "expires_at": TIME,
                          "venue": _obj({"id": ID, "name": STR}, {"district": STR,
                                                                  "address": STR}),
                          "inviter_masked": STR}),
    "VenueRegistrars": _obj(
        {"items": {"type": "array", "items": _obj({"citizen_id": INT, "name_masked": STR,
                                                   "role": {"type": "string",
                                                            "enum": ["owner", "co"]}},
                                                  {"since": TIME})},
         "invitations": {"type": "array", "items": _ref("Invitation")}},
        description="`invitations`: the unanswered ones (pending or expired), for the owner "
                    "only (empty for others)."),
    "Logbook": _obj({"id": ID, "venue_id": INT, "label": STR,
                     "state": {"type": "string",
                               "enum": ["active", "suspended", "revoked", "deleted"]},
                     "reason": _null(STR), "token": STR, "scan_url": STR, "qr_png": STR,
                     "qr_svg": STR, "poster": STR},
                    {"created_at": TIME, "state_at": _null(TIME),
                     "short_code": {**STR, "description": "场所码编号 printed under the "
                                    "poster's QR: venue-logbook-check (names the poster; "
                                    "does not open it)"}}),
    "Checkin": _obj({"id": ID, "venue_id": INT, "logbook_id": INT, "logbook_label": STR,
                     "name": STR, "id_number": MASKED_ID, "status": CHECKIN_STATUS,
                     "popup_kind": POPUP_KIND, "alert": BOOL, "minor": BOOL,
                     "via": {"type": "string", "enum": ["scan", "proxy", "registrar_scan"]},
                     "at": TIME, "left_at": _null(TIME)},
                    {"type": {"const": "checkin"}},
                    description="A check-in as registrars see it (masked). Status `unknown`: "
                                "a proxy check-in of someone who is not a registered citizen "
                                "under that name and ID number (check them by hand)."),
    "Checkout": _obj({"checkin_id": ID, "left_at": TIME}),
    "PushSubscription": _obj({"id": ID, "endpoint": STR, "created_at": TIME},
                             description="A browser that gets my notifications (Web Push)"),
    "Dependant": _obj({"id": ID, "name_masked": STR, "id_masked": MASKED_ID, "minor": BOOL,
                       "status": STATUS, "popup_kind": POPUP_KIND}),
    "Visit": _obj({"checkin_id": ID, "venue": _obj({"id": ID, "name": STR}),
                   "logbook": _obj({"id": ID, "label": STR}), "at": TIME,
                   "left_at": _null(TIME)}, {"via": STR, "status": STATUS}),
    "ScanResult": _obj({"checkin_id": ID, "status": STATUS, "alert": BOOL,
                        "venue": _obj({"id": ID, "name": STR}),
                        "logbook": _obj({"id": ID, "label": STR}), "at": TIME,
                        "left_at": _null(TIME)},
                       {"popup_kind": POPUP_KIND, "minor": BOOL, "name_masked": STR,
                        "id_masked": MASKED_ID,
                        "members": {"type": "array", "description": "a household scan: each "
                                    "member's answer (these fields) or {error, message}",
                                    "items": {"type": "object"}}}),
    "ItineraryCheck": _obj({"id": ID, "state": {"type": "string",
                                                "enum": ["pending", "passed", "failed"]},
                            "started_at": TIME, "finished_at": _null(TIME)}, {"url": STR}),
    "MessageReply": _obj({"id": ID, "from": {"type": "string",
                                              "enum": ["official", "citizen"]},
                          "text": STR, "at": TIME}),
    "Message": _obj({"id": ID, "text": STR, "at": TIME, "handled": BOOL,
                     "handled_at": _null(TIME),
                     "replies": {"type": "array", "items": _ref("MessageReply")}}),
    "AdminMessage": _obj({"id": ID, "text": STR, "at": TIME, "handled": BOOL,
                          "handled_at": _null(TIME),
                          "replies": {"type": "array", "items": _ref("MessageReply")},
                          "citizen_id": INT},
                         {"name_masked": STR, "id_masked": MASKED_ID,
                          "handled_by": _null(STR)}),
    "ProxyCheck": _obj({"name_masked": STR, "status": STATUS},
                       {"popup_kind": POPUP_KIND, "at": TIME}),
    "Health": _obj({"status": {"type": "string", "enum": ["ok", "unavailable"]},
                    "database": BOOL, "redis": BOOL}, {"hub": BOOL}),
    "RotatingCode": _obj({"logbook_id": ID, "code": STR, "scan_url": STR, "qr_svg": STR,
                          "window": INT, "period": INT, "grace": INT, "expires_at": TIME,
                          "expires_in": {"type": "number"}},
                         description="An entrance display's current code: `r.{token}`, an "
                                     "opaque token sealed by the server for one 30-s window "
                                     "(it reveals nothing of the permanent code); scans take "
                                     "it in its window and `grace` seconds after (410 "
                                     "code_expired later, 404 unknown_code if altered)."),
}

# --- responses -------------------------------------------------------------------------------

_ERRORS = {
    401: "unauthenticated: no valid bearer token or session cookie",
    403: "forbidden (also: a cookie-authenticated write without its CSRF token), or "
         "registrar_not_green",
    404: "not_found (unknown_code for a scan)",
    409: "conflict",
    410: "logbook_suspended | logbook_revoked | logbook_deleted | code_expired (an entrance "
         "display's rotating code past its window and grace) | invitation_expired (an "
         "invitation to be a co-registrar past its expires_at)",
    413: "payload_too_large",
    422: "validation_error | invalid_id_number",
    429: "rate_limited (see Retry-After)",
    503: "unavailable: the database or Redis does not answer (see Retry-After)",
}


def _error(status: int) -> dict:
    return {"$ref": f"#/components/responses/E{status}"}


def _json(description: str, schema: dict, **headers: str) -> dict:
    out: dict = {"description": description, "content": {JSON_TYPE: {"schema": schema}}}
    if headers:
        out["headers"] = {name: {"description": text, "schema": INT}
                          for name, text in headers.items()}
    return out


def _media(description: str, *types: str) -> dict:
    return {"description": description, "content": {t: {"schema": STR} for t in types}}


def _page_error(description: str) -> dict:
    """A page's error: its HTML error page, or the JSON error when the path does not even
    match the route (a non-numeric id, an empty code)."""
    return {"description": description,
            "content": {HTML: {"schema": STR}, JSON_TYPE: {"schema": _ref("Error")}}}


def _redirect(description: str) -> dict:
    return {"description": description,
            "headers": {"Location": {"description": "where to go", "schema": STR}}}


RESPONSES = {
    f"E{status}": _json(text, _ref("Error"), **({"Retry-After": "seconds to wait"}
                                                 if status in (429, 503) else {}))
    for status, text in _ERRORS.items()
}

# --- parameters ------------------------------------------------------------------------------


def _path(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


def _query(name: str, schema: dict, description: str = "", required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


PATH_ID = _path("id", ID)
AFTER = _query("after", {"type": "integer", "minimum": 0}, "the last id seen (exclusive)")


def _limit(high: int) -> dict:
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": high})


AUDIT_FILTERS = [
    _query("citizen_id", ID), _query("action", STR),
    _query("actor", STR, "the actor's tag, e.g. official:3"), _query("actor_id", ID),
    _query("since", STR, "an ISO time, or a date (from the start of that day, Beijing)"),
    _query("until", STR, "an ISO time, or a date (to the end of that day, Beijing)"),
]


# --- operations ------------------------------------------------------------------------------

OFFICIAL, CITIZEN, PUBLIC, OPTIONAL = "official", "citizen", "public", "optional"
SECURITY = {
    OFFICIAL: [{"bearer": []}, {"session": []}],
    CITIZEN: [{"bearer": []}, {"session": []}],
    PUBLIC: [],
    OPTIONAL: [{}, {"bearer": []}, {"session": []}],
}


def _op(method: str, path: str, summary: str, *, tag: str, auth: str,
        ok: dict[int, dict], body: dict | None = None, form: dict | None = None,
        params: list[dict] | None = None, errors: tuple[int, ...] = (),
        body_required: bool = True, multipart: dict | None = None) -> tuple[str, str, dict]:
    responses: dict[str, dict] = {str(status): answer for status, answer in ok.items()}
    codes = set(errors) | {503}
    if auth in (OFFICIAL, CITIZEN):
        codes |= {401, 403}
    if body is not None or multipart is not None:
        codes |= {413, 422}
    if method in ("POST", "PUT", "PATCH", "DELETE") and auth != PUBLIC:
        codes.add(403)  # the CSRF check on cookie-authenticated writes
    for status in sorted(codes):
        responses.setdefault(str(status), _error(status))
    operation: dict = {"summary": summary, "tags": [tag], "responses": responses,
                       "security": SECURITY[auth]}
    if auth in (OFFICIAL, CITIZEN):
        operation["description"] = f"Caller: {auth}."
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {JSON_TYPE: {"schema": body}}}
    if form is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": form}}}
    if multipart is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"multipart/form-data": {"schema": multipart}}}
    return method, path, operation


STATUS_CHANGE = _obj({"id_number": ID_NUMBER, "status": STATUS, "reason": _text(500)},
                     {"popup_kind": POPUP_KIND})
LOGBOOK_GUARD = (403, 404)  # only registrars of the venue; unknown logbook or venue

OPERATIONS = [
    # --- operations
    _op("GET", "/healthz", "200 when the database and Redis answer, 503 otherwise", tag="ops",
        auth=PUBLIC, ok={200: _json("healthy", _ref("Health")),
                         503: _json("a dependency is down", _ref("Health"))}),
    _op("GET", "/metrics", "Prometheus metrics", tag="ops", auth=PUBLIC,
        ok={200: _media("Prometheus text format", "text/plain")}),
    _op("GET", "/openapi.json", "This document", tag="ops", auth=PUBLIC,
        ok={200: _json("OpenAPI 3.1", {"type": "object"})}),
    # --- health authority
    _op("POST", "/api/admin/citizens", "Register a citizen; answers their bearer token",
        tag="admin", auth=OFFICIAL, errors=(409,),
        body=_obj({"name": _text(64), "id_number": ID_NUMBER},
                  {"phone": _null({"type": "string", "maxLength": 32})}),
        ok={201: _json("created", _ref("CitizenCreated"))}),
    _op("POST", "/api/admin/status-changes", "Change statuses in bulk (a job)", tag="admin",
        auth=OFFICIAL,
        body=_obj({"changes": {"type": "array", "minItems": 1, "maxItems": 100_000,
                               "items": STATUS_CHANGE}}),
        ok={202: _json("queued", _ref("Queued"))}),
    _op("POST", "/api/admin/exposures",
        "Everyone checked in at the venue in [start, end] gets the status (a job)",
        tag="admin", auth=OFFICIAL, errors=(404,),
        body=_obj({"venue_id": ID, "start": TIME, "end": TIME, "status": STATUS,
                   "reason": _text(500)}, {"popup_kind": POPUP_KIND}),
        ok={202: _json("queued", _ref("Queued"))}),
    _op("POST", "/api/admin/status-changes/preview",
        "What a status-change batch would do now (nothing is written)", tag="admin",
        auth=OFFICIAL,
        body=_obj({"changes": {"type": "array", "minItems": 1, "maxItems": 100_000,
                               "items": STATUS_CHANGE}}),
        ok={200: _json("counts", _obj({"total": INT, "changed": INT, "kept": INT,
                                        "not_found": INT, "invalid": INT}))}),
    _op("POST", "/api/admin/exposures/preview",
        "Whom an exposure would change or keep now (nothing is written)", tag="admin",
        auth=OFFICIAL, errors=(404,),
        body=_obj({"venue_id": ID, "start": TIME, "end": TIME, "status": STATUS,
                   "reason": _text(500)}, {"popup_kind": POPUP_KIND}),
        ok={200: _json("counts", _obj({"total": INT, "changed": INT, "kept": INT,
                                        "not_found": INT}, {"unregistered": INT}))}),
    _op("POST", "/api/admin/violations",
        "Record a registrar's violation: suspends every logbook they own (a job)",
        tag="admin", auth=OFFICIAL, errors=(404,),
        body=_obj({"citizen_id": ID, "reason": _text(500)}),
        ok={202: _json("queued", _ref("ViolationQueued"))}),
    _op("GET", "/api/admin/violations", "Violations", tag="admin", auth=OFFICIAL,
        errors=(422,),
        params=[_query("citizen_id", ID), _query("active", {"type": "boolean"})],
        ok={200: _json("violations", _items(_ref("Violation")))}),
    _op("POST", "/api/admin/violations/{id}/lift", "Lift a violation (a job)", tag="admin",
        auth=OFFICIAL, errors=(404, 409), params=[PATH_ID], body_required=False,
        body=_obj({}, {"reason": _null({"type": "string", "maxLength": 500})}),
        ok={202: _json("queued", _ref("ViolationQueued"))}),
    _op("DELETE", "/api/admin/violations/{id}", "Lift a violation (a job)", tag="admin",
        auth=OFFICIAL, errors=(404, 409, 413, 422), params=[PATH_ID],
        ok={202: _json("queued", _ref("ViolationQueued"))}),
    _op("POST", "/api/admin/jobs/{job_id}/undo",
        "Undo a finished status-change batch or exposure (a job): reverts it for the people "
        "nobody has changed since", tag="admin", auth=OFFICIAL, errors=(404, 409),
        params=[_path("job_id", {"type": "string"})],
        ok={202: _json("queued", _obj({"job_id": STR, "batch_id": INT,
                                       "undone_batch_id": INT}))}),
    _op("GET", "/api/admin/jobs/{job_id}", "A job's state and result", tag="admin",
        auth=OFFICIAL, errors=(404,), params=[_path("job_id", {"type": "string"})],
        ok={200: _json("the job", _ref("Job"))}),
    _op("GET", "/api/admin/batches/{id}", "A stored batch and its result", tag="admin",
        auth=OFFICIAL, errors=(404,), params=[PATH_ID],
        ok={200: _json("the batch", _ref("Batch"))}),
    _op("GET", "/api/admin/trace", "Unmasked trace of one citizen; every call is audited",
        tag="admin", auth=OFFICIAL, errors=(404, 422),
        params=[_query("id_number", ID_NUMBER, required=True),
                _query("purpose", {"type": "string", "maxLength": 500}),
                _query("since", TIME)],
        ok={200: _json("the trace", _ref("Trace"))}),
    _op("GET", "/api/admin/audit", "The audit log, newest first", tag="admin", auth=OFFICIAL,
        errors=(422,),
        params=AUDIT_FILTERS + [_query("before", ID), _limit(1000)],
        ok={200: _json("entries", _items(_ref("AuditEntry"),
                                         next_before=_null(INT)))}),
    _op("GET", "/api/admin/audit/export.csv",
        "The audit for an inspector (masked CSV, the same filters); the export is audited",
        tag="admin", auth=OFFICIAL, errors=(422,), params=AUDIT_FILTERS,
        ok={200: _media("CSV", "text/csv")}),
    _op("POST", "/api/admin/officials", "Add an official (admin only); their token, once",
        tag="officials", auth=OFFICIAL, errors=(409,),
        body=_obj({"name": _text(64), "role": ROLE},
                  {"district": _null(_text(64)), "login": _text(64)}),
        ok={201: _json("created", _ref("Official"))}),
    _op("GET", "/api/admin/officials", "Every official (admin only)", tag="officials",
        auth=OFFICIAL, ok={200: _json("officials", _items(_ref("Official")))}),
    _op("DELETE", "/api/admin/officials/{id}",
        "Disable an official: their token and sessions stop at once (401)", tag="officials",
        auth=OFFICIAL, errors=(404, 409), params=[PATH_ID],
        ok={204: {"description": "disabled"}}),
    _op("POST", "/api/admin/officials/{id}/token",
        "A new token for an official (shown once); the old one and their sessions stop",
        tag="officials", auth=OFFICIAL, errors=(404, 409), params=[PATH_ID],
        ok={200: _json("the new token", _ref("Official"))}),
    _op("GET", "/api/admin/me", "The calling official", tag="officials", auth=OFFICIAL,
        ok={200: _json("me", _ref("Official"))}),
    _op("POST", "/api/admin/notices", "An announcement to every citizen's /ws/me",
        tag="admin", auth=OFFICIAL, body=_obj({"text": _text(2000)}),
        ok={201: _json("published", _ref("Notice"))}),
    _op("GET", "/api/admin/notices", "Announcements, newest first", tag="admin",
        auth=OFFICIAL, errors=(422,), params=[_query("before", ID), _limit(500)],
        ok={200: _json("announcements", _items(_ref("Notice")))}),
    _op("GET", "/api/admin/messages", "Citizens' messages (留言) with their conversations, "
        "newest first; senders masked", tag="admin", auth=OFFICIAL, errors=(422,),
        params=[_query("before", ID), _limit(500),
                _query("handled", {"type": "string", "enum": ["true", "false"]},
                       "only handled (true) or only waiting (false) messages")],
        ok={200: _json("messages", _items(
            _ref("AdminMessage"), next_before=_null(INT)))}),
    _op("POST", "/api/admin/messages/{id}/replies", "Reply to a citizen's message (the "
        "citizen reads it in 留言栏); marks it handled unless handled is false; audited",
        tag="admin", auth=OFFICIAL, errors=(404,), params=[PATH_ID],
        body=_obj({"text": _text(2000)}, {"handled": BOOL}),
        ok={201: _json("the conversation", _ref("Message"))}),
    _op("POST", "/api/admin/messages/{id}/handled", "Mark a message handled, or open it "
        "again; audited", tag="admin", auth=OFFICIAL, errors=(404,), params=[PATH_ID],
        body=_obj({"handled": BOOL}), ok={200: _json("the conversation", _ref("Message"))}),
    # --- registrars
    _op("POST", "/api/venues", "Open a venue (the caller becomes its owner)", tag="registrar",
        auth=CITIZEN,
        body=_obj({"name": _text(200), "address": _text(300), "district": _text(64),
                   "category": _text(64)},
                  {"capacity": _null({"type": "integer", "minimum": 1, "maximum": 10**7}),
                   "max_stay_minutes": _null({"type": "integer", "minimum": 1,
                                              "maximum": 1440})}),
        ok={201: _json("created", _ref("Venue"))}),
    _op("GET", "/api/venues/{id}", "One of the caller's venues, with its occupancy",
        tag="registrar", auth=CITIZEN, errors=(404,), params=[PATH_ID],
        ok={200: _json("the venue", _ref("Venue"))}),
    _op("GET", "/api/venues", "The caller's venues, with their role", tag="registrar",
        auth=CITIZEN, ok={200: _json("venues", _items(_ref("Venue")))}),
    _op("POST", "/api/venues/{id}/registrars",
        "Invite a co-registrar (owner only, green; rate limited, audited). The same pending "
        "invitation whoever the id names (an expired one is replaced by a new one); 409 when "
        "already a registrar here",
        tag="registrar", auth=CITIZEN, errors=(404, 409, 429), params=[PATH_ID],
        body=_obj({"citizen_id": ID}), ok={201: _json("invited", _ref("Invitation"))}),
    _op("GET", "/api/venues/{id}/registrars",
        "The venue's registrars (masked); pending invitations for the owner",
        tag="registrar", auth=CITIZEN, errors=(404,), params=[PATH_ID],
        ok={200: _json("registrars", _ref("VenueRegistrars"))}),
    _op("DELETE", "/api/venues/{id}/registrars/{citizen_id}",
        "The owner removes a co-registrar or withdraws an invitation; a co-registrar leaves "
        "(their own id). Their open feeds of the venue close 4403 within a second",
        tag="registrar", auth=CITIZEN, errors=(404, 409),
        params=[PATH_ID, _path("citizen_id", ID)], ok={204: {"description": "done"}}),
    _op("GET", "/api/me/invitations", "Invitations to be a co-registrar, waiting for me",
        tag="citizen", auth=CITIZEN,
        ok={200: _json("invitations", _items(_ref("MyInvitation")))}),
    _op("POST", "/api/invitations/{id}/accept",
        "Accept: become a co-registrar (403 registrar_not_green unless green; 410 "
        "invitation_expired from its expires_at on)",
        tag="citizen", auth=CITIZEN, errors=(404, 409, 410), params=[PATH_ID],
        ok={200: _json("accepted", _ref("Invitation"))}),
    _op("POST", "/api/invitations/{id}/decline",
        "Decline an invitation (410 invitation_expired once expired)", tag="citizen",
        auth=CITIZEN, errors=(404, 409, 410), params=[PATH_ID],
        ok={200: _json("declined", _ref("Invitation"))}),
    _op("POST", "/api/venues/{id}/logbooks", "A new logbook and its QR code", tag="registrar",
        auth=CITIZEN, errors=(404,), params=[PATH_ID], body=_obj({"label": _text(100)}),
        ok={201: _json("created", _ref("Logbook"))}),
    _op("GET", "/api/venues/{id}/logbooks", "The venue's logbooks", tag="registrar",
        auth=CITIZEN, errors=(404,), params=[PATH_ID],
        ok={200: _json("logbooks", _items(_ref("Logbook")))}),
    _op("GET", "/api/logbooks/{id}", "A logbook", tag="registrar", auth=CITIZEN,
        errors=LOGBOOK_GUARD, params=[PATH_ID], ok={200: _json("the logbook", _ref("Logbook"))}),
    _op("DELETE", "/api/logbooks/{id}", "Delete a logbook: its code stops working at once",
        tag="registrar", auth=CITIZEN, errors=LOGBOOK_GUARD, params=[PATH_ID],
        ok={204: {"description": "deleted"}}),
    _op("GET", "/api/logbooks/{id}/checkins", "The logbook's check-ins (masked), oldest first",
        tag="registrar", auth=CITIZEN, errors=(*LOGBOOK_GUARD, 422),
        params=[PATH_ID, AFTER, _limit(1000)],
        ok={200: _json("check-ins", _items(_ref("Checkin"), next_after=INT))}),
    _op("GET", "/api/logbooks/{id}/export.csv", "The check-ins as CSV (masked)",
        tag="registrar", auth=CITIZEN, errors=LOGBOOK_GUARD, params=[PATH_ID],
        ok={200: _media("CSV", "text/csv")}),
    _op("GET", "/api/logbooks/{id}/export.xlsx", "The check-ins as a spreadsheet (masked)",
        tag="registrar", auth=CITIZEN, errors=LOGBOOK_GUARD, params=[PATH_ID],
        ok={200: _media("XLSX", XLSX)}),
    _op("POST", "/api/logbooks/{id}/proxy-checkins",
        "Check in a visitor without a phone (by name and ID number; rate limited per "
        "registrar, audited). A registered citizen when both are theirs, else an "
        "unregistered visitor (status unknown), the same answer whichever part differs",
        tag="registrar", auth=CITIZEN, errors=(*LOGBOOK_GUARD, 410, 429), params=[PATH_ID],
        body=_obj({"name": _text(64), "id_number": ID_NUMBER}),
        ok={201: _json("checked in", _ref("Checkin")),
            200: _json("the same check-in, within 60 s", _ref("Checkin"))}),
    _op("POST", "/api/logbooks/{id}/visitor-scans",
        "Check in a visitor by scanning their personal code (反扫)", tag="registrar",
        auth=CITIZEN, errors=(*LOGBOOK_GUARD, 410, 429), params=[PATH_ID],
        body=_obj({"code": _text(100)}),
        ok={201: _json("checked in (via registrar_scan)", _ref("Checkin")),
            200: _json("the same check-in, within 60 s", _ref("Checkin"))}),
    _op("POST", "/api/logbooks/{id}/checkins/{checkin_id}/checkout",
        "Check a visitor out (the stay ends now)", tag="registrar", auth=CITIZEN,
        errors=LOGBOOK_GUARD, params=[PATH_ID, _path("checkin_id", ID)], body_required=False,
        ok={200: _json("the stay's departure", _ref("Checkout"))}),
    # --- citizens
    _op("GET", "/api/me", "My card: status and what it means", tag="citizen", auth=CITIZEN,
        ok={200: _json("my card", _ref("Card"))}),
    _op("GET", "/api/me/notices", "My notices (the /ws/me feed, for polling)", tag="citizen",
        auth=CITIZEN, errors=(422,), params=[AFTER, _limit(500)],
        ok={200: _json("notices", _items(_ref("Notice"), next_after=INT))}),
    _op("POST", "/api/me/checkout", "离场: my open stay (or the one named) ends now",
        tag="citizen", auth=CITIZEN, errors=(404,), body_required=False,
        body=_obj({}, {"checkin_id": ID}),
        ok={200: _json("the stay's departure", _ref("Checkout"))}),
    _op("GET", "/api/me/stay", "My open stay, with how full its venue is", tag="citizen",
        auth=CITIZEN, errors=(404,),
        ok={200: _json("the open stay", _obj(
            {"checkin_id": ID, "at": TIME, "until": TIME, "status": CHECKIN_STATUS,
             "popup_kind": POPUP_KIND, "via": STR,
             "venue": _obj({"id": ID, "name": STR, "occupancy": INT,
                            "capacity": _null(INT), "full": BOOL}),
             "logbook": _obj({"id": ID, "label": STR})}, {"left_at": {"type": "null"}}))}),
    _op("GET", "/api/me/code", "My personal code (反扫) for a registrar to scan: valid 60 s",
        tag="citizen", auth=CITIZEN,
        ok={200: _json("the code", _obj({"code": STR, "expires_at": TIME},
                                        {"refresh_seconds": INT, "qr": STR}))}),
    _op("GET", "/api/me/dependants", "My household: the dependants I check in with me",
        tag="citizen", auth=CITIZEN, ok={200: _json("dependants", _items(_ref("Dependant")))}),
    _op("POST", "/api/me/dependants",
        "Add a registered citizen (name and ID number must both be theirs) to my household",
        tag="citizen", auth=CITIZEN, errors=(404, 409, 429),
        body=_obj({"name": _text(64), "id_number": ID_NUMBER}),
        ok={201: _json("added", _ref("Dependant"))}),
    _op("DELETE", "/api/me/dependants/{id}", "Remove a dependant from my household",
        tag="citizen", auth=CITIZEN, errors=(404,), params=[PATH_ID],
        ok={204: {"description": "removed"}}),
    _op("GET", "/api/me/checkins", "My own visits of the last 28 days (oldest first)",
        tag="citizen", auth=CITIZEN, errors=(422,), params=[AFTER, _limit(500)],
        ok={200: _json("visits", _items(_ref("Visit"), next_after=INT))}),
    _op("GET", "/api/me/traces", "When my record was traced or checked, by whom and why",
        tag="citizen", auth=CITIZEN,
        ok={200: _json("traces", _items(_obj({"id": ID, "at": TIME, "action": STR})))}),
    _op("POST", "/api/me/itinerary-verification",
        "Start verifying my itinerary (travel popup): pending until the itinerary platform's "
        "callback; the body is ignored, nothing here clears the popup", tag="citizen",
        auth=CITIZEN, errors=(409,), body_required=False, body=_obj({}),
        ok={202: _json("pending", _ref("ItineraryCheck"))}),
    _op("POST", "/api/itinerary/callback",
        "The itinerary platform's verdict (signed): passed turns a travel popup green",
        tag="itinerary", auth=PUBLIC, errors=(401, 404, 413, 422),
        params=[{"name": "X-Scanbook-Signature", "in": "header", "required": True,
                 "schema": STR, "description": 't=<unix seconds>,v1=<hex HMAC-SHA256 of '
                 '"<t>.<raw body>" under SCANBOOK_ITINERARY_SECRET>; 401 when missing, wrong, '
                 'more than 300 s from now, or for a reference already used'}],
        body=_obj({"id_number": ID_NUMBER,
                   "result": {"type": "string", "enum": ["passed", "failed"]},
                   "reference": _text(200), "at": TIME}),
        ok={200: _json("recorded", _obj({"reference": STR, "result": STR,
                                          "changed": BOOL}))}),
    _op("POST", "/api/me/sign-out-everywhere",
        "Revoke my bearer token and end all my sessions (open WebSockets close 4401)",
        tag="citizen", auth=CITIZEN,
        ok={200: _json("signed out", _obj({"signed_out": BOOL, "sessions_ended": INT,
                                            "token_revoked": BOOL}))}),
    # --- Web Push (docs/push.md)
    _op("GET", "/api/push/key", "The server's VAPID public key (the applicationServerKey a "
        "browser subscribes with)", tag="citizen", auth=PUBLIC,
        ok={200: _json("the key", _obj({"public_key": {
            "type": "string", "pattern": "^[A-Za-z0-9_-]{87}$",
            "description": "base64url (no padding) of the uncompressed P-256 point"}}))}),
    _op("GET", "/api/me/push-subscriptions", "My browsers that get notifications",
        tag="citizen", auth=CITIZEN,
        ok={200: _json("subscriptions", _items(_ref("PushSubscription")))}),
    _op("POST", "/api/me/push-subscriptions",
        "This browser gets my notifications (PushSubscription.toJSON()); the endpoint must be "
        "a push service's https URL; the same endpoint again updates it (moves it to me)",
        tag="citizen", auth=CITIZEN,
        body=_obj({"endpoint": {"type": "string", "format": "uri", "maxLength": 2048},
                   "keys": _obj({"p256dh": {"type": "string", "description":
                                            "base64url of a P-256 public key (65 bytes)"},
                                 "auth": {"type": "string", "description":
                                          "base64url of 16 bytes"}})},
                  {"expirationTime": _null(INT)}),
        ok={201: _json("subscribed", _ref("PushSubscription")),
            200: _json("already subscribed (keys updated)", _ref("PushSubscription"))}),
    _op("DELETE", "/api/me/push-subscriptions/{id}", "No more notifications to that browser",
        tag="citizen", auth=CITIZEN, errors=(404,), params=[PATH_ID],
        ok={204: {"description": "unsubscribed"}}),
    _op("GET", "/api/status-guide", "Every state a card can show, with its advice",
        tag="citizen", auth=PUBLIC, ok={200: _json("states", _items({"type": "object"}))}),
    _op("POST", "/api/proxy-check", "他人代查: another person's status (audited, rate limited)",
        tag="citizen", auth=CITIZEN, errors=(404, 429),
        body=_obj({"name": _text(64), "id_number": ID_NUMBER}),
        ok={200: _json("their status", _ref("ProxyCheck"))}),
    _op("POST", "/api/scan", "Check in with the code inside a logbook's QR code",
        tag="citizen", auth=CITIZEN, errors=(404, 410, 429),
        body=_obj({"code": _text(200)},
                  {"scanned_at": {**TIME, "description": "a scan queued on an offline phone: "
                                  "when it was scanned (at most 2 h ago); recorded at it"},
                   "dependants": {"type": "array", "maxItems": 10, "items": ID,
                                  "description": "household members to check in too (their "
                                                 "ids from GET /api/me/dependants); the "
                                                 "answer then lists them in `members`"}}),
        ok={201: _json("checked in", _ref("ScanResult")),
            200: _json("the same check-in, within 60 s", _ref("ScanResult"))}),
    _op("POST", "/api/messages", "留言: a message to the health authority", tag="citizen",
        auth=CITIZEN, body=_obj({"text": _text(2000)}),
        ok={201: _json("stored: the new conversation", _ref("Message"))}),
    _op("POST", "/api/messages/{id}/replies", "Answer in my own 留言 conversation (it is "
        "open again for the officials)", tag="citizen", auth=CITIZEN, errors=(404,),
        params=[PATH_ID], body=_obj({"text": _text(2000)}),
        ok={201: _json("my reply", _ref("MessageReply"))}),
    _op("GET", "/api/me/messages", "My 留言 with the officials' replies, newest first",
        tag="citizen", auth=CITIZEN, errors=(422,), params=[_limit(100)],
        ok={200: _json("my messages", _items(_ref("Message")))}),
    _op("POST", "/api/me/photo", "A new photo for my card (JPEG, PNG or WebP, ≤ 8 MB)",
        tag="citizen", auth=CITIZEN,
        multipart=_obj({"photo": {"type": "string", "format": "binary"}}),
        ok={201: _json("stored (re-encoded as JPEG)",
                       _obj({"photo_url": STR, "bytes": INT}))}),
    _op("GET", "/api/me/photo", "My card's photo", tag="citizen", auth=CITIZEN, errors=(404,),
        params=[_query("v", STR, "the photo's version (from photo_url)")],
        ok={200: _media("JPEG", "image/jpeg")}),
    # --- sign-in by SMS code (web/api_auth.py)
    _op("POST", "/api/auth/otp", "Text a sign-in code to a registered citizen's phone",
        tag="auth", auth=PUBLIC, errors=(403, 429),
        body=_obj({"phone": {"type": "string", "maxLength": 32,
                             "description": "a mainland mobile number (11 digits, +86 ok)"}}),
        ok={202: _json("sent if the phone is registered (the answer does not say)",
                       _obj({"sent": BOOL, "ttl": INT, "resend_after": INT}))}),
    _op("POST", "/api/auth/verify", "Sign in with the code: sets the session cookie",
        tag="auth", auth=PUBLIC, errors=(401, 403, 409, 429),
        body=_obj({"phone": {"type": "string", "maxLength": 32},
                   "code": {"type": "string", "pattern": "^[0-9]{6}$"}},
                  {"citizen_id": ID}),
        ok={200: _json("signed in: my card", _ref("Card"))}),
    _op("GET", "/api/logbooks/{id}/rotating-code",
        "An entrance display's current QR code (changes every 30 s)", tag="registrar",
        auth=CITIZEN, errors=(*LOGBOOK_GUARD, 410), params=[PATH_ID],
        ok={200: _json("the current code", _ref("RotatingCode"))}),
    # --- pages
    _op("GET", "/", "Home page", tag="pages", auth=OPTIONAL, ok={200: _media("page", HTML)}),
    _op("GET", "/login", "Sign-in page", tag="pages", auth=PUBLIC,
        params=[_query("next", STR), _query("error", STR)], ok={200: _media("page", HTML)}),
    _op("POST", "/login", "Sign in with a token: sets the session cookie", tag="pages",
        auth=PUBLIC, errors=(403,),
        form=_obj({"token": STR}, {"next": STR, "csrf_token": STR}),
        ok={303: _redirect("to `next` (signed in) or back to /login?error=1"),
            429: _media("too many sign-ins from this address (the sign-in page)", HTML)}),
    _op("POST", "/login/official",
        "An official signs in with login, password and authenticator code (session cookie); "
        "rate limited and audited", tag="pages", auth=PUBLIC, errors=(403,),
        form=_obj({"login": STR, "password": STR, "code": STR}, {"next": STR}),
        ok={303: _redirect("to `next` (default /admin)"),
            401: _media("wrong credentials (the sign-in page again)", HTML),
            429: _media("too many attempts (the sign-in page again)", HTML)}),
    _op("POST", "/api/auth/official",
        "An official signs in with login, password and authenticator code: sets the session "
        "cookie; rate limited per login and address, every failure audited", tag="auth",
        auth=PUBLIC, errors=(401, 403, 429),
        body=_obj({"login": _text(64), "password": _text(256), "code": STR}),
        ok={200: _json("signed in", _obj({"signed_in": BOOL, "id": ID, "name": STR,
                                          "role": ROLE, "district": _null(STR)}))}),
    _op("GET", "/logout", "Sign out", tag="pages", auth=PUBLIC,
        ok={303: _redirect("home")}),
    _op("POST", "/logout", "Sign out", tag="pages", auth=PUBLIC, errors=(403,),
        ok={303: _redirect("home")}),
    _op("GET", "/s/{code}", "The page a phone opens after scanning a logbook's QR code",
        tag="pages", auth=OPTIONAL, params=[_path("code", {"type": "string"})],
        ok={200: _media("the check-in page", HTML), 404: _page_error("unknown code"),
            410: _media("the logbook is suspended, revoked or deleted, or an entrance "
                        "display's code has expired", HTML)}),
    _op("GET", "/me/visits", "My visits of the last 28 days, with 离场", tag="pages",
        auth=OPTIONAL, ok={200: _media("page", HTML), 303: _redirect("sign in first"),
                           403: _page_error("officials have no visits")}),
    _op("GET", "/offline/scan", "The scan page kept by the service worker for no signal",
        tag="pages", auth=OPTIONAL, ok={200: _media("page", HTML)}),
    _op("GET", "/sw.js", "The service worker (scope /): the phone pages open offline",
        tag="pages", auth=OPTIONAL, ok={200: _media("script", "text/javascript")}),
    _op("GET", "/manifest.webmanifest", "The web app manifest (installable phone pages)",
        tag="pages", auth=OPTIONAL,
        ok={200: {"description": "manifest", "content": {"application/manifest+json": {
            "schema": _obj({"name": STR, "short_name": STR, "start_url": STR, "scope": STR,
                            "display": STR, "icons": {"type": "array"}})}}}}),
    _op("GET", "/me/household", "My household: dependants to check in with me", tag="pages",
        auth=OPTIONAL, ok={200: _media("page", HTML), 303: _redirect("sign in first"),
                           403: _page_error("officials have no household")}),
    _op("GET", "/me/code", "My personal code (反扫) as a changing QR code", tag="pages",
        auth=OPTIONAL, ok={200: _media("page", HTML), 303: _redirect("sign in first"),
                           403: _page_error("officials have no personal code")}),
    _op("GET", "/console", "The registrar's console: my venues, open a venue", tag="pages",
        auth=OPTIONAL, ok={200: _media("page", HTML), 303: _redirect("sign in first")}),
    _op("GET", "/venues/{id}", "A venue's console: logbooks, registrars, proxy check-in",
        tag="pages", auth=OPTIONAL, params=[PATH_ID],
        ok={200: _media("page", HTML), 303: _redirect("sign in first"),
            403: _media("not a registrar of the venue", HTML),
            404: _page_error("no such venue")}),
    _op("GET", "/logbooks/{id}/display", "The entrance screen: a QR code rotating every 30 s",
        tag="pages", auth=OPTIONAL, params=[PATH_ID],
        ok={200: _media("page", HTML), 303: _redirect("sign in first"),
            403: _media("not a registrar of the venue", HTML),
            404: _page_error("no such logbook")}),
    _op("GET", "/logbooks/{id}/qr.png", "The logbook's QR code", tag="pages", auth=CITIZEN,
        errors=LOGBOOK_GUARD, params=[PATH_ID], ok={200: _media("PNG", "image/png")}),
    _op("GET", "/logbooks/{id}/qr.svg", "The logbook's QR code", tag="pages", auth=CITIZEN,
        errors=LOGBOOK_GUARD, params=[PATH_ID], ok={200: _media("SVG", "image/svg+xml")}),
    _op("GET", "/logbooks/{id}/poster", "A printable poster of the logbook's QR code",
        tag="pages", auth=OPTIONAL, params=[PATH_ID],
        ok={200: _media("page", HTML), 303: _redirect("sign in first"),
            403: _media("not a registrar of the venue", HTML),
            404: _page_error("no such logbook")}),
    _op("GET", "/venues/{id}/live", "A registrar's live arrivals page", tag="pages",
        auth=OPTIONAL, params=[PATH_ID],
        ok={200: _media("page", HTML), 303: _redirect("sign in first"),
            403: _media("not a registrar of the venue", HTML),
            404: _page_error("no such venue")}),
    # --- the officials' console and the wallboard (web/pages_official.py)
    *[_op("GET", path, summary, tag="pages", auth=OPTIONAL, params=params,
          ok={200: _media("page", HTML), 303: _redirect("sign in first"),
              403: _media("officials only", HTML), **extra})
      for path, summary, params, extra in [
          ("/admin", "Officials' console: overview", [], {}),
          ("/admin/status-changes", "Upload status changes as CSV; per-row results", [], {}),
          ("/admin/exposures", "Exposure tracing form", [_query("venue_id", ID)], {}),
          ("/admin/jobs", "Recent jobs", [_query("before", ID)], {}),
          ("/admin/jobs/{job_id}", "A job's progress and result",
           [_path("job_id", {"type": "string"})], {404: _page_error("no such job")}),
          ("/admin/trace", "Audited trace search (with its purpose)", [], {}),
          ("/admin/audit", "The audit log, filtered by actor, action and date",
           [_query("action", STR), _query("actor_id", ID), _query("since", STR),
            _query("until", STR), _query("before", ID)], {}),
          ("/admin/violations", "Violations and lifting them", [_query("show", STR)], {}),
          ("/admin/notices", "Announcements", [], {}),
          ("/admin/messages", "Citizens' messages: reply, mark handled",
           [_query("before", ID), _query("handled", {"type": "string",
                                                    "enum": ["true", "false"]})], {}),
          ("/wallboard", "The control room's crowding wallboard (live from /ws/wallboard)",
           [], {}),
          ("/admin/officials", "Officials' accounts: list, add, disable, new token (admins)",
           [], {}),
          ("/admin/account", "My account: set a password and enrol an authenticator", [], {}),
      ]],
    # --- the console's forms (web/pages_accounts.py): session cookie + csrf_token field
    *[_op("POST", path, summary, tag="pages", auth=OPTIONAL, params=params,
          form=_obj(fields, {"csrf_token": STR}),
          ok={200: _media("the page again, with the outcome", HTML), **extra,
              303: _redirect("sign in first, or back to the list"),
              403: _media("officials only / admins only, or a missing CSRF token", HTML)})
      for path, summary, params, fields, extra in [
          ("/admin/officials", "Add an official; their token is shown on the page once", [],
           {"name": STR, "role": ROLE}, {201: _media("added: the token, once", HTML),
                                         409: _media("the login is taken", HTML),
                                         422: _media("bad input", HTML)}),
          ("/admin/officials/{id}/disable", "Disable an official (their sessions end)",
           [PATH_ID], {}, {409: _media("the bootstrap admin", HTML),
                          404: _page_error("no such official")}),
          ("/admin/officials/{id}/token", "A new token for an official, shown once",
           [PATH_ID], {}, {409: _media("the bootstrap admin, or disabled", HTML),
                          404: _page_error("no such official")}),
          ("/admin/account/credentials",
           "Set my password and a new authenticator secret (its QR code shown once)", [],
           {"password": STR, "password2": STR}, {422: _media("passwords differ or short",
                                                             HTML)}),
          ("/admin/account/confirm", "Turn my authenticator on with a code from it", [],
           {"code": STR}, {422: _media("wrong code", HTML)}),
      ]],
]

WEBSOCKETS = {
    "/ws/venues/{id}/feed": {
        "summary": "A registrar's live feed of the venue (officials too)",
        "query": {"after": "the last check-in id seen"},
        "messages": ["checkin", "checkout", "occupancy", "logbook", "ready", "ping"]},
    "/ws/me": {
        "summary": "A citizen's own notices: status changes and announcements",
        "query": {"after": "the last notice id seen"},
        "messages": ["status", "notice", "ready", "ping"]},
    "/ws/wallboard": {
        "summary": "Officials: crowding across venues at least once a second — {type: "
                   "crowding, at, scans_per_min, alerts_last_hour, venues: [{venue_id, name, "
                   "district, recent, capacity, level, load, rate_per_min}], venues_active, "
                   "window_minutes, districts, series, ticker, advice} (models/crowding.py)",
        "query": {},
        "messages": ["crowding", "ping"]},
}
CLOSE_CODES = {
    "1003": "binary frames", "1008": "a client message that is not a JSON object, or a bad "
    "query parameter", "1009": "a client frame over 4 KiB", "4401": "unauthenticated",
    "4403": "forbidden (including a cookie-authenticated handshake from another origin)",
    "4404": "not found", "4429": "too many client messages",
}


def build_document() -> dict:
    paths: dict[str, dict] = {}
    for method, path, operation in OPERATIONS:
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Scanbook 扫码登记",
            "version": "1",
            "description": "Venue check-in and live dispatch for a city's health kit. Every "
                           "error is {\"error\": code, \"message\": text}. Cookie-authenticated "
                           "writes carry the X-CSRF-Token header (the scanbook_csrf cookie's "
                           "value); bearer clients need none.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a citizen's token, or the official token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "scanbook_session",
                            "description": "the browser session set by POST /login"},
            },
        },
        "x-websockets": {"paths": WEBSOCKETS, "close_codes": CLOSE_CODES},
    }


DOCUMENT = build_document()


async def openapi_json(request: Request) -> Response:
    return JSON(DOCUMENT)


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
