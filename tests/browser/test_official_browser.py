"""The officials' console in a real browser (desk-sized window): a CSV upload of status changes
with each row's result, an exposure run to the end of its job, an audited trace that shows in
the audit log with its purpose, violations and lifting them, announcements and messages.
Jobs run through a real RQ worker (the `run_jobs` fixture) while the page polls."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from models.idnumber import make_id_number
from models.masking import mask_id_number
from models.tables import Batch
from models.timeutil import BEIJING
from tests.browser.conftest import shot, sign_in
from tests.conftest import ADMIN

DESK = {"viewport": {"width": 1440, "height": 900}, "is_mobile": False, "has_touch": False,
        "device_scale_factor": 1}
TOKEN = ADMIN["Authorization"].split(" ", 1)[1]


def console(new_page, server, path="/admin", token=TOKEN, **options):
    page = new_page(**{**DESK, **options})
    sign_in(page, server.url, token, path)
    return ready(page)


def ready(page):
    """Wait until the console page shown says its listeners are attached: a page module does
    that after a top-level await, which the load event does not wait for. After every
    navigation (goto, a reload the page makes itself) that is followed by a click."""
    page.wait_for_function("""() => !document.querySelector('script[src^="/static/official/"]')
                                  || document.documentElement.dataset.ready === 'true'""")
    return page


def named(client, name: str, role: str, district: str | None = None) -> str:
    """A named official's token: the console acts as them, and the audit names them."""
    r = client.post("/api/admin/officials", headers=ADMIN,
                    json={"name": name, "role": role, "district": district})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def me(client, person) -> dict:
    return client.get("/api/me", headers=person["headers"]).json()


def test_csv_upload_shows_each_rows_result(server, client, people, run_jobs, new_page):
    yellow, red = people.make("王小明"), people.make("欧阳娜娜")
    unknown = make_id_number("110105", date(1991, 2, 3), 987)  # valid, but nobody has it
    bad = yellow["id_number"][:-1] + ("0" if yellow["id_number"][-1] != "0" else "1")
    lines = ["身份证号,状态,原因",  # Chinese headers and labels, saved as GBK (Excel in China)
             f"{yellow['id_number']},居家观察,密接人员",
             f"{red['id_number']},集中观察,确诊病例同行",
             f"{bad},yellow,校验位错误的号码",
             f"{unknown},yellow,查无此人",
             f"{people.make('赵六')['id_number']},orange,未知状态"]
    data = ("\r\n".join(lines) + "\r\n").encode("gb18030")

    page = console(new_page, server, "/admin/status-changes",
                   token=named(client, "张珊", "operator"))  # the audit names her
    assert "张珊" in page.inner_text("#who-panel")
    page.set_input_files("#csv-file", files=[{"name": "名单.csv", "mimeType": "text/csv",
                                              "buffer": data}])
    page.wait_for_selector("#preview:not([hidden])")
    assert "5 行" in page.inner_text("#preview-count")
    assert page.locator("#preview-table tbody tr").count() == 5
    assert "居家观察" in page.inner_text("#preview-table tbody tr:first-child")
    shot(page, "official-upload-preview")

    page.click("#upload-submit")
    # What it would do, before anything runs: then the official confirms.
    page.wait_for_selector("#confirm:not([hidden])")
    counts = {key: page.locator(f"#confirm-counts [data-key={key}] dd").inner_text()
              for key in ("changed", "kept", "not_found", "invalid")}
    assert counts == {"changed": "2", "kept": "0", "not_found": "1", "invalid": "2"}
    assert page.locator("#job").is_hidden() and me(client, yellow)["status"] == "green"
    shot(page, "official-upload-confirm")
    page.click("#confirm-run")
    page.wait_for_selector("#job:not([hidden])")
    assert page.locator("#confirm").is_hidden()
    run_jobs()
    page.wait_for_selector("#row-results:not([hidden])")
    assert page.get_attribute("#job-state", "data-state") == "finished"
    assert page.inner_text("#row-summary") == "处理成功 2 行，有问题 3 行"
    problems = page.locator("#row-table tbody tr")
    assert problems.count() == 3  # only the rows with problems, by default
    by_line = {row.get_attribute("data-line"): row.inner_text()
               for row in problems.all()}
    assert set(by_line) == {"4", "5", "6"}  # the file's own line numbers (header is line 1)
    assert "身份证号无效" in by_line["4"]
    assert "查无此人" in by_line["5"] and unknown in by_line["5"]
    assert "数据有误" in by_line["6"]
    assert page.locator("#job-summary [data-key=applied] dd").inner_text() == "2"
    shot(page, "official-upload-results", full_page=True)

    page.uncheck("#only-problems")
    assert page.locator("#row-table tbody tr").count() == 5
    assert page.locator("#row-table tbody tr.row-ok").count() == 2
    assert me(client, yellow)["status"] == "yellow" and me(client, red)["status"] == "red"

    # the job's own page says the same, and the batch names who asked
    page.click("#job-link")
    page.wait_for_selector("#row-results:not([hidden])")
    assert page.locator("#row-table tbody tr").count() == 3
    job_rows = page.inner_text("#row-table tbody")  # the stored result: numbers masked
    assert mask_id_number(unknown) in job_rows and unknown not in job_rows
    assert "张珊" in page.inner_text(".facts-grid")
    shot(page, "official-job")


def test_exposure_runs_and_its_job_finishes(server, client, people, run_jobs,
                                           venue_with_logbook, new_page):
    _owner, venue, book = venue_with_logbook
    visitors = [people.make(name) for name in ("孙八", "周九")]
    for person in visitors:
        assert client.post("/api/scan", headers=person["headers"],
                           json={"code": book["token"]}).status_code == 201

    page = console(new_page, server, "/admin/exposures")
    page.fill("#venue-id", str(venue["id"]))
    page.locator("#venue-id").dispatch_event("input")
    assert "望京SOHO塔1" in page.inner_text("#venue-name")
    now = datetime.now(BEIJING)
    page.fill("#start", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#end", (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    page.select_option("#status", "popup")
    assert page.locator("#popup-kind").is_visible()
    page.select_option("#popup-kind", "risk_area")
    page.fill("#reason", "确诊病例到访场所")
    shot(page, "official-exposure-form")
    page.click("#exposure-submit")
    page.wait_for_selector("#confirm:not([hidden])")
    assert page.locator("#confirm-counts [data-key=changed] dd").inner_text() == "2"
    assert page.locator("#confirm-counts [data-key=kept] dd").inner_text() == "0"
    shot(page, "official-exposure-confirm")
    page.click("#confirm-cancel")  # cancelled: nothing runs
    page.wait_for_selector("#confirm", state="hidden")
    assert page.locator("#job").is_hidden()
    with client.app.state.engine.connect() as conn:  # no batch was even stored
        assert conn.execute(select(func.count()).select_from(Batch.__table__)).scalar() == 0
    assert all(me(client, person)["status"] == "green" for person in visitors)
    page.click("#exposure-submit")
    page.wait_for_selector("#confirm:not([hidden])")
    page.click("#confirm-run")
    page.wait_for_selector("#job:not([hidden])")
    run_jobs()
    page.wait_for_selector("#job-state[data-state=finished]")
    assert page.locator("#job-summary [data-key=total] dd").inner_text() == "2"
    assert page.locator("#job-summary [data-key=applied] dd").inner_text() == "2"
    shot(page, "official-exposure-finished")
    for person in visitors:
        card = me(client, person)
        assert (card["status"], card["popup_kind"]) == ("popup", "risk_area")

    # an unknown venue is refused before any job
    page.fill("#venue-id", "999999")
    page.click("#exposure-submit")
    page.wait_for_selector("#submit-error:not([hidden])")
    assert "场所不存在" in page.inner_text("#submit-error")

    # The job's page undoes it, after a confirmation: a new job; everyone is green again.
    page.click("#job-link")
    page.wait_for_selector("#undo:not([hidden])")
    first = page.url
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#undo-button")
    page.wait_for_url(lambda url: url != first and "/admin/jobs/" in url)
    run_jobs()
    page.wait_for_selector("#job-state[data-state=finished]")
    assert page.locator("#job-summary [data-key=changed] dd").inner_text() == "2"
    assert all(me(client, person)["status"] == "green" for person in visitors)
    shot(page, "official-undo-finished")


def test_trace_with_its_purpose_is_in_the_audit_log(server, client, people,
                                                    venue_with_logbook, new_page):
    _owner, venue, book = venue_with_logbook
    person = people.make("诸葛亮")
    assert client.post("/api/scan", headers=person["headers"],
                       json={"code": book["token"]}).status_code == 201

    page = console(new_page, server, "/admin/trace", token=named(client, "李卫", "tracer",
                                                                 "东城区"))
    assert page.locator("#audit-warning").is_visible()
    page.fill("#trace-id", person["id_number"])
    page.fill("#trace-purpose", "密切接触者排查")
    page.click("#trace-submit")
    page.wait_for_selector("#trace-result:not([hidden])")
    person_box = page.inner_text("#trace-person")
    assert "诸葛亮" in person_box and person["id_number"] in person_box  # unmasked
    assert page.locator("#trace-checkins tbody tr").count() == 1
    assert venue["name"] in page.inner_text("#trace-checkins")
    assert "已记入审计日志" in page.inner_text("#trace-audit")
    shot(page, "official-trace", full_page=True)

    # a search that finds nobody is audited too
    nobody = make_id_number("110105", date(1980, 1, 1), 4242)
    page.fill("#trace-id", nobody)
    page.click("#trace-submit")
    page.wait_for_selector("#trace-error:not([hidden])")
    assert "查无此人" in page.inner_text("#trace-error")

    page.click("nav.console-nav >> text=审计日志")
    page.wait_for_url(f"{server.url}/admin/audit")
    rows = page.locator("#audit-table tbody tr[data-action=trace]")
    assert rows.count() == 2
    newest, first = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert "密切接触者排查" in first and "李卫" in first and "东城区卫生健康部门" in first
    assert person["id_masked"] in first and person["id_number"] not in page.content()
    assert "否" in newest and "是" in first  # found / not found
    shot(page, "official-audit")


def test_violation_and_lifting_it(server, client, people, run_jobs, venue_with_logbook,
                                  new_page):
    owner, _venue, book = venue_with_logbook
    page = console(new_page, server, "/admin/violations")
    page.fill("#violation-citizen", str(owner["id"]))
    page.fill("#violation-reason", "替他人扫码登记")
    page.click("#violation-submit")
    page.wait_for_selector("#job:not([hidden])")
    run_jobs()
    page.wait_for_selector("#violations-table tr[data-active=true]")  # after the reload
    ready(page)  # the reloaded page's lift forms are wired (else the click submits natively)
    row = page.locator("#violations-table tr[data-active=true]")
    assert "替他人扫码登记" in row.inner_text() and "已停用登记簿 1 个" in row.inner_text()
    assert client.get(f"/api/logbooks/{book['id']}", headers=owner["headers"]
                      ).json()["state"] == "suspended"
    shot(page, "official-violations")

    row.locator("input[name=reason]").fill("已整改")
    row.locator("button").click()
    page.wait_for_selector("#job:not([hidden])")
    run_jobs()
    page.wait_for_selector("#violations-table", state="detached")  # reloaded: none in force
    assert client.get(f"/api/logbooks/{book['id']}", headers=owner["headers"]
                      ).json()["state"] == "active"
    page.click("nav.tabs >> text=已解除")
    page.wait_for_url(f"{server.url}/admin/violations?show=lifted")
    assert "已整改" in page.inner_text("#violations-table")


def test_announcements_messages_and_english(server, client, people, new_page):
    writer = people.make("上官婉儿")
    assert client.post("/api/messages", headers=writer["headers"],
                       json={"text": "东门排队太长，建议增加登记码"}).status_code == 201
    page = console(new_page, server, "/admin/notices")
    page.fill("#notice-text", "明日8时起全员核酸检测，请就近参加。")
    page.click("#notice-submit")
    page.wait_for_selector("#notice-done:not([hidden])")
    assert "明日8时起" in page.inner_text("#notice-list li:first-child")
    assert client.get("/api/me/notices", headers=writer["headers"]).json()["items"][-1][
        "text"] == "明日8时起全员核酸检测，请就近参加。"
    shot(page, "official-notices")

    page.goto(f"{server.url}/admin/messages")
    assert "东门排队太长" in page.inner_text("#message-list")
    assert "上官**" in page.inner_text("#message-list")
    shot(page, "official-messages")

    page.goto(f"{server.url}/admin?lang=en")
    assert page.inner_text("h1") == "Health-authority console"
    assert page.get_attribute("html", "lang") == "en"
    shot(page, "official-home-en")
    page.goto(f"{server.url}/admin?lang=zh")
    shot(page, "official-home")


def test_the_job_page_lists_who_kept_their_status(server, client, people, run_jobs,
                                                  venue_with_logbook, new_page):
    _owner, venue, book = venue_with_logbook
    red, green = people.make("欧阳娜娜"), people.make("孙八")
    assert client.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
        {"id_number": red["id_number"], "status": "red", "reason": "密接"}]}).status_code == 202
    run_jobs()
    for person in (red, green):
        assert client.post("/api/scan", headers=person["headers"],
                           json={"code": book["token"]}).status_code == 201
    now = datetime.now(BEIJING)
    queued = client.post("/api/admin/exposures", headers=ADMIN, json={
        "venue_id": venue["id"], "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(), "status": "yellow",
        "reason": "场所暴露"}).json()
    run_jobs()
    page = console(new_page, server, f"/admin/jobs/{queued['job_id']}")
    page.wait_for_selector("#people-results:not([hidden])")
    rows = page.locator("#people-table tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-result") == "kept"
    text = rows.first.inner_text()
    assert "欧阳**" in text and red["id_masked"] in text and "集中观察" in text
    assert red["id_number"] not in page.content()
    assert page.locator("#job-summary [data-key=kept] dd").inner_text() == "1"
    shot(page, "official-job-kept")


def test_the_officials_page_adds_rotates_and_disables(server, client, new_page):
    page = console(new_page, server, "/admin/officials")
    assert page.locator("nav.console-nav >> text=工作人员账户").count() == 1
    page.fill("#add-name", "钱医生")
    page.select_option("#add-role", "tracer")
    page.fill("#add-district", "西城区")
    page.click("#add-submit")
    page.wait_for_selector("#token-shown")
    token = page.inner_text("#token-value").strip()
    assert token.startswith("sbo_")
    me = client.get("/api/admin/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["name"], me["role"], me["district"]) == ("钱医生", "tracer", "西城区")
    row = page.locator(f"#officials-table tr[data-official-id='{me['id']}']")
    assert "流调员" in row.inner_text() and "西城区" in row.inner_text()
    shot(page, "official-officials")

    row.locator("text=更换令牌").click()
    page.wait_for_selector("#token-shown")
    new = page.inner_text("#token-value").strip()
    assert new != token
    assert client.get("/api/admin/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    page.locator(f"#officials-table tr[data-official-id='{me['id']}'] >> text=停用").click()
    page.wait_for_selector(f"#officials-table tr[data-official-id='{me['id']}'][data-active=false]")
    assert client.get("/api/admin/me",
                      headers={"Authorization": f"Bearer {new}"}).status_code == 401

    page.goto(f"{server.url}/admin/officials?lang=en")
    assert "Add an official" in page.inner_text("#official-add")
    assert "Disabled" in page.inner_text(f"#officials-table tr[data-official-id='{me['id']}']")


def test_a_viewer_does_not_see_the_officials_page(server, client, new_page):
    page = console(new_page, server, "/admin", token=named(client, "赵查看", "viewer"))
    assert page.locator("nav.console-nav >> text=工作人员账户").count() == 0
    assert "赵查看" in page.inner_text("#who-panel")
    response = page.goto(f"{server.url}/admin/officials")
    assert response.status == 403 and page.locator("#officials-table").count() == 0
