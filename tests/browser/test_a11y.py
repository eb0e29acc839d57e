"""Every citizen and registrar page, as shown on a phone, in both languages: labelled
controls, touch targets of 44 px at least, readable text contrast (tests/browser/conftest.py
`audit`)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import audit, sign_in
from tests.browser.test_live import open_live, set_status


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_citizen_and_registrar_pages_pass_the_audit(server, client, people, run_jobs,
                                                   venue_with_logbook, new_page, lang):
    owner, venue, logbook = venue_with_logbook
    page = new_page()
    page.goto(f"{server.url}/login?lang={lang}")
    problems = {"login": audit(page)}
    page.goto(f"{server.url}/s/{logbook['token']}")
    problems["scan signed out"] = audit(page)

    for status in ("yellow", "popup"):  # the two cards with the least contrast headroom
        person = people.make("王小明")
        extra = {"popup_kind": "travel"} if status == "popup" else {}
        set_status(client, run_jobs, person, status, **extra)
        phone = new_page()
        phone.goto(f"{server.url}/?lang={lang}")
        sign_in(phone, server.url, person["token"], f"/s/{logbook['token']}")
        phone.wait_for_selector("#result:not([hidden])")  # opening the page checks in
        if status == "popup":  # the popup's dialog first, then the card behind it
            phone.wait_for_selector("#popup-dialog[open]")
            problems["scan popup dialog"] = audit(phone)
            phone.click("#popup-later")
        problems[f"scan card {status}"] = audit(phone)
        phone.goto(f"{server.url}/")
        phone.wait_for_selector("#my-venues li")
        problems[f"home {status}"] = audit(phone)

    registrar = new_page()
    registrar.goto(f"{server.url}/?lang={lang}")
    sign_in(registrar, server.url, owner["token"], "/console")
    problems["console"] = audit(registrar)
    registrar.goto(f"{server.url}/venues/{venue['id']}")
    problems["venue"] = audit(registrar)
    registrar.goto(f"{server.url}/logbooks/{logbook['id']}/display")
    problems["display"] = audit(registrar)
    live = open_live(new_page, server.url, owner, venue["id"])
    live.goto(f"{server.url}/venues/{venue['id']}/live?lang={lang}")
    live.wait_for_selector("#arrivals li")
    problems["live"] = audit(live)
    assert {page: found for page, found in problems.items() if found} == {}
