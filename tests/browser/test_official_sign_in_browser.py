"""An official signs in as themselves in a real browser (Chromium): enrols a password and an
authenticator on *My account* (the code computed with pyotp from the secret the page shows
once), signs out, signs in on the sign-in page's officials form with the password and a
code; a wrong code and a replayed code are refused with the form's message; failed tries
are rate limited per login name; sign-out ends the session on the server and the back button
does not bring the console back. A viewer's console offers no link to what they may not do."""

from __future__ import annotations

import re
import time

import httpx2 as httpx
import pyotp

from tests.browser.conftest import shot, sign_in
from tests.conftest import ADMIN

DESK = {"viewport": {"width": 1440, "height": 900}, "is_mobile": False, "has_touch": False,
        "device_scale_factor": 1}
PASSWORD = "墙上的马-correct horse"
WRONG = "登录名、密码或验证码错误。"


def _official(client, name: str, role: str) -> dict:
    r = client.post("/api/admin/officials", headers=ADMIN, json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


def _enrol(page, base: str, token: str) -> pyotp.TOTP:
    """The first sign-in (token), then a password and the authenticator, as on the page."""
    sign_in(page, base, token, "/admin/account")
    assert "未设置" in page.inner_text("#account-state")
    page.fill("#new-password", PASSWORD)
    page.fill("#new-password2", PASSWORD)
    page.click("#credentials-submit")
    page.wait_for_selector("#enrol-qr")
    assert page.get_attribute("#enrol-qr", "src").startswith("data:image/svg+xml;base64,")
    totp = pyotp.parse_uri(page.inner_text("#enrol-uri").strip())  # what the app scans
    assert totp.issuer == "Scanbook"
    page.fill("#confirm-code", totp.now())
    page.click("#confirm-submit")
    page.wait_for_selector("#account-done")
    assert page.locator("#enrol-qr").count() == 0  # shown once
    page.click("#who-panel button[type=submit]")  # sign out
    page.wait_for_url(f"{base}/")
    return totp


def _sign_in_form(page, base: str, login: str, password: str, code: str):
    page.goto(f"{base}/login?next=%2Fadmin")
    page.fill("#official-login", login)
    page.fill("#official-password", password)
    page.fill("#official-code", code)
    with page.expect_navigation() as navigation:
        page.click("#official-form button[type=submit]")
    return navigation.value


def _next_step(totp: pyotp.TOTP, steps: int = 1) -> str:
    """A code of a later time step: the server accepts the neighbouring step (clock drift),
    and each step's code only once, so the enrolment's own code cannot be used again."""
    return totp.at(time.time() + steps * totp.interval)


def test_password_and_authenticator_sign_in(server, client, new_page):
    made = _official(client, "钱医生", "operator")
    page = new_page(**DESK)
    totp = _enrol(page, server.url, made["token"])
    login = made["login"]

    # a wrong code: refused on the form, with its message, still signed out
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    while wrong in (totp.now(), _next_step(totp), _next_step(totp, -1)):
        wrong = f"{(int(wrong) + 1) % 1_000_000:06d}"
    response = _sign_in_form(page, server.url, login, PASSWORD, wrong)
    assert response.status == 401
    assert page.inner_text("#official-error") == WRONG
    assert page.get_attribute("#official-error", "role") == "alert"
    # the officials' form is the page's last: its message must be in view, not below the fold
    assert page.evaluate("""() => { const r = document.getElementById("official-error")
                                      .getBoundingClientRect();
                                    return r.top >= 0 && r.bottom <= innerHeight; }""")
    assert page.input_value("#official-login") == login  # kept; the password and code not
    assert page.evaluate("document.activeElement.id") == "official-password"
    assert page.locator("#who-panel").count() == 0
    shot(page, "official-sign-in-wrong-code")
    # the wrong password with the right code: the same message (nothing says which was wrong)
    assert _sign_in_form(page, server.url, login, "not the password", totp.now()).status == 401
    assert page.inner_text("#official-error") == WRONG

    # the right password and code: the console, as themselves
    code = _next_step(totp)
    response = _sign_in_form(page, server.url, login, PASSWORD, code)
    assert response.status == 200 and page.url == f"{server.url}/admin"
    assert "钱医生" in page.inner_text("#who-panel") and "操作员" in page.inner_text("#who-role")
    shot(page, "official-signed-in")
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["scanbook_session"]
    with httpx.Client(base_url=server.url, cookies={"scanbook_session": cookie}) as old:
        assert old.get("/api/admin/me").json()["id"] == made["id"]

    # sign out: the session ends on the server, and Back does not show the console again
    page.click("#who-panel button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    page.go_back()
    page.wait_for_url(re.compile(r"/login\?next=%2Fadmin"))
    assert page.locator("#who-panel").count() == 0 and page.locator("#official-form").count() == 1
    with httpx.Client(base_url=server.url, cookies={"scanbook_session": cookie}) as old:
        r = old.get("/api/admin/me")
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
        assert old.get("/admin", follow_redirects=False).status_code == 303

    # the code that signed in is spent: the same one again is refused
    assert _sign_in_form(page, server.url, login, PASSWORD, code).status == 401
    assert page.inner_text("#official-error") == WRONG

    # every failure was audited under the login tried, never with the password or code
    failed = client.get("/api/admin/audit", params={"action": "sign_in_failed"},
                        headers=ADMIN).json()["items"]
    assert len(failed) == 3 and {f["detail"]["login"] for f in failed} == {login}
    assert PASSWORD not in str(failed) and code not in str(failed)


def test_failed_sign_ins_lock_the_login_out(server, client, new_page):
    made = _official(client, "孙医生", "viewer")
    page = new_page(**DESK)
    totp = _enrol(page, server.url, made["token"])
    for _ in range(10):  # OFFICIAL_TRIES a login name in 10 minutes
        assert _sign_in_form(page, server.url, made["login"], "a wrong password",
                             "000000").status == 401
    # the eleventh try is refused before the credentials are even looked at: the right ones too
    response = _sign_in_form(page, server.url, made["login"], PASSWORD, _next_step(totp))
    assert response.status == 429 and int(response.headers["retry-after"]) > 0
    assert page.inner_text("#official-error") == "尝试次数过多，请稍后再试。"
    assert page.locator("#who-panel").count() == 0
    shot(page, "official-sign-in-locked")


def test_a_viewer_sees_no_link_to_what_they_may_not_do(server, client, new_page):
    made = _official(client, "赵查看", "viewer")
    page = new_page(**DESK)
    sign_in(page, server.url, made["token"], "/admin")
    nav = page.locator("nav.console-nav a")
    hrefs = {nav.nth(i).get_attribute("href") for i in range(nav.count())}
    assert hrefs == {"/admin", "/admin/jobs", "/admin/audit", "/admin/violations",
                     "/admin/notices", "/admin/messages", "/wallboard", "/admin/account"}
    tiles = page.locator("ul.tiles a")
    tile_hrefs = {tiles.nth(i).get_attribute("href") for i in range(tiles.count())}
    assert not tile_hrefs & {"/admin/status-changes", "/admin/exposures", "/admin/trace"}
    assert "/admin/audit" in tile_hrefs
    for hidden in ("批量变更状态", "场所密接追踪", "个案查询", "工作人员账户"):
        assert page.get_by_role("link", name=hidden).count() == 0, hidden
    shot(page, "official-viewer-home")

    page.click("nav.console-nav >> text=违规处理")  # reading: yes; recording one: no form
    page.wait_for_url(f"{server.url}/admin/violations")
    assert page.locator("#violation-form").count() == 0
    page.click("nav.console-nav >> text=发布公告")
    page.wait_for_url(f"{server.url}/admin/notices")
    assert page.locator("#notice-form").count() == 0

    # typing the address of a page the role may not use: the 403 page, and a way back
    response = page.goto(f"{server.url}/admin/trace")
    assert response.status == 403 and page.locator("#trace-form").count() == 0
    assert "您的角色（查看员）不能使用此页面" in page.inner_text("#forbidden-role")
    shot(page, "official-viewer-forbidden")
    page.click("text=返回工作台")
    page.wait_for_url(f"{server.url}/admin")
