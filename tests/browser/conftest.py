"""Real-browser fixtures: Debian's Chromium driven by Playwright against a real uvicorn process.

Never downloads a browser: /usr/bin/chromium comes from `apt-get install chromium`.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.servers import ROOT, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SHOTS = ROOT / "artifacts" / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
WAIT_MS = 15_000


# Package scope, not session: while sync_playwright is open the main thread has a running
# event loop, and any later test calling asyncio.run() would fail. Leaving tests/browser
# closes it.
@pytest.fixture(scope="package")
def browser():
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (browser tests)"
        if os.environ.get("SCANBOOK_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server():
    """One uvicorn process per module; the tests' database is wiped between tests."""
    with running_server() as running:
        yield running


@pytest.fixture
def new_page(browser):
    """new_page(**context options) → a page in a fresh browser context (its own cookies).

    Uncaught script errors and Content-Security-Policy refusals fail the test: a page whose
    module died shows nothing wrong in a screenshot but does nothing."""
    contexts = []
    problems: list[str] = []

    def on_console(message):
        if message.type == "error" and ("Content Security Policy" in message.text
                                        or "Refused to" in message.text):
            problems.append(message.text)

    def make(**options):
        context = browser.new_context(**{**PHONE, **options})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
        page.on("console", on_console)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not problems, problems


def sign_in(page, base_url: str, token: str, next_path: str = "/") -> None:
    """Sign in through the login form, the way a person does; lands on next_path."""
    page.goto(f"{base_url}/login?next={quote(next_path, safe='')}")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def shot(page, name: str, **options) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    if options.get("full_page"):
        page.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar lands mid-page
    page.screenshot(path=str(path), **options)
    return path


def register(client, name: str, phone: str, *, born=None, seq: int = 1) -> dict:
    """A citizen with their own phone number (the `people` fixture shares one)."""
    from datetime import date

    from models.idnumber import make_id_number
    from tests.conftest import ADMIN

    id_number = make_id_number("110105", born or date(1986, 4, 2), 700 + seq)
    r = client.post("/api/admin/citizens", headers=ADMIN,
                    json={"name": name, "id_number": id_number, "phone": phone})
    assert r.status_code == 201, r.text
    body = r.json()
    return {**body, "id_number": id_number, "phone": phone,
            "headers": {"Authorization": f"Bearer {body['token']}"}}


def sign_in_by_sms(page, base_url: str, redis_client, phone: str, next_path: str = "/",
                   name: str | None = None) -> None:
    """Sign in the way a citizen does: phone number, the SMS code (read from the development
    gateway's store), 登录; lands on next_path."""
    from web.otp import last_dev_code

    page.goto(f"{base_url}/login?next={quote(next_path, safe='')}")
    page.fill("#otp-phone", phone)
    page.click("#otp-send")
    page.wait_for_selector("#otp-status:not([hidden])")
    code = last_dev_code(redis_client, phone)
    assert code, "the development gateway keeps the last code"
    if name:
        shot(page, name)
    page.fill("#otp-code", code)
    page.click("#otp-submit")
    page.wait_for_url(f"{base_url}{next_path}")


# Checks a person would make by eye, run on the page as it is shown: every control has a label
# (a <label>, aria-label or its own text), every control is a comfortable touch target (44 px
# high at least, WCAG 2.5.5), and text contrasts with what is behind it (4.5:1, large text
# 3:1; backgrounds with transparency are composited up the ancestors).
_AUDIT = """
() => {
  const problems = [];
  const visible = (e) => { const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  const name = (e) => e.id ? `#${e.id}` : `${e.tagName.toLowerCase()}.${e.className}`;
  for (const e of document.querySelectorAll("input, select, textarea, button, a.button, summary")) {
    if (e.type === "hidden" || e.closest("[hidden]")) continue;
    const shown = visible(e) || (e.classList.contains("visually-hidden"));
    if (!shown) continue;
    const labelled = (e.labels && e.labels.length) || e.getAttribute("aria-label") ||
      e.getAttribute("aria-labelledby") || (e.textContent || "").trim() || e.title;
    if (!labelled) problems.push(`unlabelled ${name(e)}`);
    if (!e.classList.contains("visually-hidden") && e.getBoundingClientRect().height < 43.5)
      problems.push(`small target ${name(e)} ${e.getBoundingClientRect().height}px`);
  }
  const rgba = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0, 0, 0, 0];
    const p = m[1].split(",").map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => { const a = top[3]; return [0, 1, 2].map(
    (i) => top[i] * a + under[i] * (1 - a)).concat([1]); };
  const background = (e) => { const layers = [];
    for (let n = e; n; n = n.parentElement) { const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let color = [255, 255, 255, 1];
    for (const layer of layers.reverse()) color = over(layer, color);
    return color; };
  const lum = (c) => { const f = (v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const e = t.parentElement;
    if (!t.textContent.trim() || seen.has(e) || !visible(e) || e.closest("[hidden], svg, .sheet"))
      continue;
    seen.add(e);
    const s = getComputedStyle(e);
    const fg = over(rgba(s.color), background(e));
    const bg = background(e);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5))
      problems.push(`contrast ${ratio.toFixed(2)} ${name(e)} ${t.textContent.trim().slice(0, 20)}`);
  }
  return problems;
}
"""


def audit(page) -> list[str]:
    """Unlabelled controls, small touch targets and low-contrast text on the page."""
    return page.evaluate(_AUDIT)
