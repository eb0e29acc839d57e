"""The officials' console pages and the wallboard page, through TestClient: who may open them,
what they list (from the same domain functions as the API), the language switch, labelled
controls, the content security policy, and GET /api/admin/messages."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.conftest import ADMIN
from web.security import page_script_hashes, script_hash

PAGES = ["/admin", "/admin/status-changes", "/admin/exposures", "/admin/jobs", "/admin/trace",
         "/admin/audit", "/admin/violations", "/admin/notices", "/admin/messages", "/wallboard"]
TOKEN = ADMIN["Authorization"].split(" ", 1)[1]


def sign_in(client, token: str = TOKEN) -> None:
    r = client.post("/login", data={"token": token, "next": "/admin"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin"


@pytest.fixture
def official(client):
    sign_in(client)
    return client


class Controls(HTMLParser):
    """Form controls and the ids their labels point at."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict] = []
        self.labelled: set[str] = set()
        self.inline_handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if any(name.startswith("on") for name in attrs):
            self.inline_handlers.append(tag)
        if tag == "label" and attrs.get("for"):
            self.labelled.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden",
                                                                              "submit"):
            self.controls.append(attrs)


@pytest.mark.parametrize("path", PAGES)
def test_signed_out_goes_to_sign_in_and_back(client, path):
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=" + path.replace("/", "%2F"))


@pytest.mark.parametrize("path", PAGES)
def test_citizens_are_refused(client, people, path):
    citizen = people.make()
    sign_in_citizen = client.post("/login", data={"token": citizen["token"], "next": "/"},
                                  follow_redirects=False)
    assert sign_in_citizen.status_code == 303
    r = client.get(path)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "仅限卫生健康部门工作人员使用" in r.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_chinese_by_default_labelled_and_fit_the_policy(official, path):
    r = official.get(path)
    assert r.status_code == 200, r.text[:500]
    assert '<html lang="zh-CN">' in r.text
    assert r.headers["cache-control"] == "no-store"
    parser = Controls()
    parser.feed(r.text)
    unlabelled = [c for c in parser.controls
                  if c.get("id") not in parser.labelled and not c.get("aria-label")]
    assert not unlabelled, f"{path}: controls without a label: {unlabelled}"
    assert not parser.inline_handlers, path
    assert not re.search(r"<style\b|\sstyle\s*=", r.text, re.I), path
    allowed = set(page_script_hashes())
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", r.text, re.S):
        if "src=" in attrs or "application/json" in attrs:
            continue
        assert script_hash(body) in allowed, f"{path}: an inline script the CSP refuses"
    # every module and stylesheet the page names is served
    for asset in re.findall(r'(?:src|href)="(/static/official/[^"?]+)\?v=', r.text):
        assert official.get(asset).status_code == 200, asset


def test_the_english_switch(official):
    r = official.get("/admin?lang=en")
    assert '<html lang="en">' in r.text and "Health-authority console" in r.text
    assert official.get("/wallboard").text.count("Venue crowding") >= 1  # remembered
    r = official.get("/admin/trace?lang=zh")
    assert "个案查询" in r.text


def test_the_wallboard_page_is_dark_full_screen_and_live(official):
    r = official.get("/wallboard")
    assert 'class="wallboard"' in r.text
    assert "/static/official/wallboard.js?v=" in r.text
    assert 'id="wb-map"' in r.text and 'id="wb-ticker-list"' in r.text
    assert 'id="wb-district-filter"' in r.text and "海淀区" in r.text
    assert "场所人流监测" in r.text


def test_audit_log_lists_traces_with_their_purpose(official, people, officials):
    person = people.make("诸葛亮")
    tracer = officials.make("tracer", name="张珊", district="朝阳区")
    # A header the client chose names no one: the audit names the authenticated official.
    headers = {**tracer["headers"], "X-Official": "%E6%9D%8E%E5%9B%9B"}
    r = official.get("/api/admin/trace", params={"id_number": person["id_number"],
                                                "purpose": "流调溯源"}, headers=headers)
    assert r.status_code == 200
    page = official.get("/admin/audit").text
    assert "流调溯源" in page and "张珊" in page and f"#{tracer['id']}" in page
    assert "朝阳区卫生健康部门" in page and "李四" not in page
    assert person["id_masked"] in page and person["id_number"] not in page
    assert "流调溯源" in official.get("/admin/audit?action=trace").text
    assert "流调溯源" not in official.get("/admin/audit?action=proxy_check").text
    assert "流调溯源" in official.get(f"/admin/audit?actor_id={tracer['id']}").text
    assert "流调溯源" not in official.get("/admin/audit?actor_id=999").text
    assert "流调溯源" not in official.get("/admin/audit?until=2020-01-01").text
    assert "流调溯源" in official.get("/admin/audit?since=2020-01-01&action=trace").text


def test_messages_listed_masked_newest_first(official, client, people):
    writer = people.make("欧阳娜娜")
    for text in ("门口排队太长", "请增加登记码"):
        assert client.post("/api/messages", headers=writer["headers"],
                           json={"text": text}).status_code == 201
    page = official.get("/admin/messages").text
    assert page.index("请增加登记码") < page.index("门口排队太长")
    assert "欧阳**" in page and "欧阳娜娜" not in page and writer["id_number"] not in page

    r = client.get("/api/admin/messages", headers=ADMIN, params={"limit": 1})
    assert r.status_code == 200
    body = r.json()
    (item,) = body["items"]
    assert item["text"] == "请增加登记码" and item["name_masked"] == "欧阳**"
    assert item["id_masked"] == writer["id_masked"]
    older = client.get("/api/admin/messages", headers=ADMIN,
                       params={"before": body["next_before"]}).json()
    assert [m["text"] for m in older["items"]] == ["门口排队太长"]
    assert client.get("/api/admin/messages", headers=writer["headers"]).status_code == 403
    assert client.get("/api/admin/messages", headers=ADMIN,
                      params={"limit": "x"}).status_code == 422


def test_violations_listed_with_a_lift_form(official, client, venue_with_logbook, run_jobs):
    owner, _venue, _book = venue_with_logbook
    r = client.post("/api/admin/violations", headers=ADMIN,
                    json={"citizen_id": owner["id"], "reason": "转借登记码给他人"})
    assert r.status_code == 202
    run_jobs()
    violation_id = r.json()["violation_id"]
    page = official.get("/admin/violations").text
    assert "转借登记码给他人" in page and "李*" in page
    assert f'class="lift-form" data-violation-id="{violation_id}"' in page
    assert "已停用登记簿 1 个" in page
    assert "转借登记码给他人" not in official.get("/admin/violations?show=lifted").text


def test_jobs_and_a_job_page(official, client, people, run_jobs):
    person = people.make()
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": person["id_number"], "status": "yellow", "reason": "密接"},
        {"id_number": "110101199001011234", "status": "yellow", "reason": "密接"}]})
    job_id = r.json()["job_id"]
    run_jobs()
    jobs = official.get("/admin/jobs").text
    assert f'href="/admin/jobs/{job_id}"' in jobs
    assert "共 2 行，生效 1，问题 1" in jobs
    page = official.get(f"/admin/jobs/{job_id}")
    assert page.status_code == 200 and job_id in page.text and "批量变更状态" in page.text
    assert official.get("/admin/jobs/no-such-job").status_code == 404
    assert f'href="/admin/jobs/{job_id}"' in official.get("/admin").text


def test_exposure_form_offers_venues_and_notices_list(official, client, venue_with_logbook):
    _owner, venue, _book = venue_with_logbook
    page = official.get(f"/admin/exposures?venue_id={venue['id']}").text
    assert f'<option value="{venue["id"]}">望京SOHO塔1 · 朝阳区</option>' in page
    assert f'value="{venue["id"]}"' in page
    assert client.post("/api/admin/notices", headers=ADMIN,
                       json={"text": "明日全员核酸"}).status_code == 201
    assert "明日全员核酸" in official.get("/admin/notices").text


def test_the_csv_template_is_served(official):
    r = official.get("/static/official/status-changes-template.csv")
    assert r.status_code == 200
    assert r.text.splitlines()[0] == "id_number,status,reason,popup_kind"


# Each console page and the lowest role that may open it: the page needs what the API it
# drives needs (docs/officials.md, "Roles"). Written out here, not read from web/.
LOWEST = {"/admin": "viewer", "/admin/status-changes": "operator",
          "/admin/exposures": "operator", "/admin/jobs": "viewer", "/admin/trace": "tracer",
          "/admin/audit": "viewer", "/admin/violations": "viewer", "/admin/notices": "viewer",
          "/admin/messages": "viewer", "/wallboard": "viewer", "/admin/officials": "admin",
          "/admin/account": "viewer"}
LADDER = ("viewer", "operator", "tracer", "admin")
ROLE_ZH = {"viewer": "查看员", "operator": "操作员", "tracer": "流调员", "admin": "管理员"}


def _nav_links(html: str) -> set[str]:
    nav = re.search(r'<nav class="console-nav".*?</nav>', html, re.S).group(0)
    return set(re.findall(r'<a href="([^"]+)"', nav))


@pytest.mark.parametrize("role", LADDER)
def test_each_role_opens_only_its_pages_and_sees_only_their_links(client, officials,
                                                                  run_jobs, role):
    r = client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": "110101199001011234", "status": "yellow", "reason": "密接"}]})
    job_page = f"/admin/jobs/{r.json()['job_id']}"
    run_jobs()
    sign_in(client, officials.make(role, name=f"{ROLE_ZH[role]}甲")["token"])
    rung = LADDER.index(role)
    allowed = {path for path, least in LOWEST.items() if rung >= LADDER.index(least)}
    for path, least in {**LOWEST, job_page: "viewer"}.items():
        r = client.get(path)
        if rung >= LADDER.index(least):
            assert r.status_code == 200, (role, path, r.status_code)
            if path != "/wallboard":  # the board is full screen, without the console's nav
                assert _nav_links(r.text) == allowed, (role, path)
        else:
            assert r.status_code == 403, (role, path, r.status_code)
            assert r.headers["content-type"].startswith("text/html")
            assert 'id="forbidden-role"' in r.text, (role, path)
            assert f"您的角色（{ROLE_ZH[role]}）不能使用此页面" in r.text
            assert f"需要{ROLE_ZH[least]}或以上" in r.text
            assert 'href="/admin"' in r.text  # back to what they may use
    home = client.get("/admin").text
    tiles = set(re.findall(r'<a class="tile[^"]*" href="([^"]+)"', home))
    assert tiles == allowed - {"/admin", "/admin/jobs", "/admin/officials", "/admin/account"}


@pytest.mark.parametrize("role", LADDER)
def test_pages_and_the_api_they_drive_agree(client, officials, people, role):
    """A page loads exactly when its API answers the same role (not 403)."""
    person = people.make()
    made = officials.make(role)
    pairs = {"/admin/status-changes": ("POST", "/api/admin/status-changes/preview",
                                       {"changes": [{"id_number": person["id_number"],
                                                     "status": "yellow", "reason": "密接"}]}),
             "/admin/trace": ("GET", f"/api/admin/trace?id_number={person['id_number']}", None),
             "/admin/officials": ("GET", "/api/admin/officials", None),
             "/admin/audit": ("GET", "/api/admin/audit", None)}
    sign_in(client, made["token"])
    for page_path, (method, api_path, body) in pairs.items():
        page_ok = client.get(page_path).status_code == 200
        api = client.request(method, api_path, json=body, headers=made["headers"])
        assert api.status_code != 401, api.text
        assert page_ok == (api.status_code != 403), (role, page_path, api.status_code)


def test_a_viewer_gets_no_action_forms(client, officials, people, venue_with_logbook,
                                       run_jobs):
    owner, _venue, _book = venue_with_logbook
    assert client.post("/api/admin/violations", headers=ADMIN, json={
        "citizen_id": owner["id"], "reason": "转借登记码"}).status_code == 202
    run_jobs()
    writer = people.make("欧阳娜娜")
    assert client.post("/api/messages", headers=writer["headers"],
                       json={"text": "门口排队太长"}).status_code == 201
    forms = {"/admin/violations": ('id="violation-form"', 'class="lift-form"'),
             "/admin/notices": ('id="notice-form"',),
             "/admin/messages": ('class="msg-reply-form',)}
    for role, shown in (("viewer", False), ("operator", True)):
        client.cookies.clear()
        sign_in(client, officials.make(role, name=f"{ROLE_ZH[role]}乙")["token"])
        for path, markers in forms.items():
            r = client.get(path)
            assert r.status_code == 200
            for marker in markers:
                assert (marker in r.text) is shown, (role, path, marker)
        assert ("转借登记码" in client.get("/admin/violations").text
                and "门口排队太长" in client.get("/admin/messages").text)  # reading stays
