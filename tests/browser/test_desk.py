"""The official's desk in a real browser: the console's skip link, and 留言栏 as a
conversation (an official replies, the citizen reads the reply on their home page, the
message shows handled or not)."""

from __future__ import annotations

from tests.browser.conftest import shot
from tests.browser.test_official_browser import console


def test_the_console_has_a_skip_link_past_the_navigation(server, new_page):
    page = console(new_page, server, "/admin/notices")
    page.keyboard.press("Tab")  # the first stop is the skip link, not the top bar
    assert page.evaluate("document.activeElement.id") == "skip-link"
    assert page.locator("#skip-link").is_visible()
    shot(page, "console-skip-link-1920", full_page=False)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "console-main"
    page.keyboard.press("Tab")  # the next stop is inside the main content, not the sidebar
    assert page.evaluate("!!document.activeElement.closest('#console-main')")
