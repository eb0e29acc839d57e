"""The official's desk in a real browser: the console's skip link, and 留言栏 as a
conversation (an official replies, the citizen reads the reply on their home page, the
message shows handled or not)."""

from __future__ import annotations

from tests.browser.conftest import shot
from tests.browser.test_official_browser import console, ready


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


def test_message_conversation_between_an_official_and_a_citizen(server, client, redis_client,
                                                                new_page):
    from tests.browser.conftest import register, sign_in_by_sms

    phone_number = "13912340077"
    register(client, "张三丰", phone_number)
    phone = new_page()
    sign_in_by_sms(phone, server.url, redis_client, phone_number)
    phone.fill("#message-text", "地铁站入口排队太长，建议增加扫码点")
    phone.click("#message-form button[type=submit]")
    phone.wait_for_selector("#my-messages li.thread")
    assert phone.get_attribute("#my-messages li.thread", "data-handled") == "false"
    assert phone.inner_text("#my-messages .pill") == "待处理"

    desk = console(new_page, server, "/admin/messages?handled=false")
    card = desk.locator(".message-card").first
    assert "地铁站入口排队太长" in card.inner_text() and "张**" in card.inner_text()
    assert card.locator(".msg-state").inner_text() == "待处理"
    card.locator("textarea").fill("已通知地铁站增加两个扫码点，谢谢反馈。")
    card.locator("button[type=submit]").click()
    desk.wait_for_selector(".message-card[data-handled=true]")
    assert card.locator(".msg-state").inner_text() == "已处理"
    assert "已通知地铁站增加两个扫码点" in card.locator(".msg-replies").inner_text()
    shot(desk, "console-messages-1920")
    desk.goto(f"{server.url}/admin/messages?handled=false")
    assert desk.locator(".message-card").count() == 0  # nothing waits any more

    # The citizen reads the reply in 留言栏 and writes back: it waits for an official again.
    phone.reload()
    phone.wait_for_selector("#my-messages li.thread[data-handled=true]")
    thread = phone.locator("#my-messages li.thread").first
    assert thread.locator(".pill").inner_text() == "已处理"
    assert "已通知地铁站增加两个扫码点" in thread.locator(".bubble.theirs").inner_text()
    thread.locator("details.follow summary").click()
    thread.locator("textarea").fill("今天排队少多了")
    thread.locator("form button[type=submit]").click()
    phone.wait_for_selector("#my-messages li.thread[data-handled=false] .bubble.mine >> nth=1")
    thread.scroll_into_view_if_needed()
    shot(phone, "home-messages-390")
    desk.goto(f"{server.url}/admin/messages?handled=false")
    assert "今天排队少多了" in desk.inner_text(".message-card .msg-replies")
    ready(desk)  # the toggle's listener is attached
    desk.click(".message-card .msg-toggle")  # handled without another reply
    desk.wait_for_selector(".message-card[data-handled=true]")
