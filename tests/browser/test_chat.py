"""The demo chat room in two Chromium tabs: each sees the other's messages (and its own, as a receipt).

Drives ``chat.html`` by its documented ids (see the comment at the top of
``trio_ws/demo_site/chat.html``) against the demo's ``/chat`` endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .conftest import Pages, Server, wait_for_text

if TYPE_CHECKING:
    from playwright.sync_api import Page


def join(pages: Pages, server: Server, name: str) -> Page:
    page = pages.new()
    page.goto(server.url + "/chat.html")
    page.wait_for_selector('#chat-state[data-state="open"]')
    assert page.locator("#chat-url").inner_text() == server.ws_url + "/chat"
    page.fill("#chat-name", name)
    return page


def say(page: Page, text: str) -> None:
    page.fill("#chat-text", text)
    page.click("#chat-send")


def wait_for_message(page: Page, name: str, text: str, *, own: bool) -> None:
    """Wait until ``page`` shows ``name: text``; ``own``: whether this tab sent it."""
    line = page.locator(f'#chat-log .line[data-dir="in"][data-name="{name}"]').filter(has_text=text)
    line.wait_for()
    assert line.count() == 1
    assert line.get_attribute("data-text") == text
    assert line.get_attribute("data-self") == ("true" if own else "false")


def test_two_tabs_see_each_others_messages(demo_server: Server, pages: Pages) -> None:
    alice = join(pages, demo_server, "alice")
    bob = join(pages, demo_server, "bob")

    say(alice, "hi bob 👋")
    wait_for_message(bob, "alice", "hi bob 👋", own=False)
    wait_for_message(alice, "alice", "hi bob 👋", own=True)

    say(bob, "你好 alice")
    wait_for_message(alice, "bob", "你好 alice", own=False)
    wait_for_message(bob, "bob", "你好 alice", own=True)

    # Both tabs saw both messages, in the same order.
    for page in (alice, bob):
        wait_for_text(page, "chat-count", "2")
        lines = page.locator('#chat-log .line[data-dir="in"]')
        assert [lines.nth(i).get_attribute("data-name") for i in range(lines.count())] == ["alice", "bob"]
    assert pages.errors() == []


def test_a_tab_that_leaves_does_not_stop_the_room(demo_server: Server, pages: Pages) -> None:
    alice = join(pages, demo_server, "alice")
    bob = join(pages, demo_server, "bob")
    carol = join(pages, demo_server, "carol")
    bob.close()
    say(alice, "still here?")
    wait_for_message(carol, "alice", "still here?", own=False)
    say(carol, "yes")
    wait_for_message(alice, "carol", "yes", own=False)
    assert pages.errors() == []
