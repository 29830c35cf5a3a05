"""The app by keyboard alone, in a real headless Chromium: Tab walks Compare's controls in order (an open
dropdown does not stay open or send the focus to the page's body), the focus shows, and SAM is
prompted with a cross-hair the arrow keys move."""

import pytest

from conftest import last_click_answered, sam_photo

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # a real browser, seconds a test (docs/testing.md)

FOCUSED = """() => { const e = document.activeElement;
    return {tag: e.tagName, id: e.id, role: e.getAttribute("role"), label: e.getAttribute("aria-label") || e.name || "",
            outline: parseFloat(getComputedStyle(e).outlineWidth) || 0,
            ring: Math.max(parseFloat(getComputedStyle(e).outlineWidth) || 0,
                           parseFloat(getComputedStyle(e.closest("label") || e).outlineWidth) || 0)}; }"""


def tab_until(page, found, most: int = 60) -> list[dict]:
    """Press Tab until `found(focused)` holds; every focused element on the way, the last one included."""
    seen = []
    for _ in range(most):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
        if found(seen[-1]):
            return seen
    raise AssertionError(f"not reached in {most} Tabs: {seen}")


def test_tab_walks_compare_and_leaves_a_dropdown_closed(server, page):
    from playwright.sync_api import expect

    page.goto(server)
    page.get_by_text("Segmentation explorer").first.wait_for()
    seen = tab_until(page, lambda f: f["role"] == "combobox" and f["label"].startswith("CamVid val sample"))
    assert page.locator("[role=listbox]").count() == 1  # focus opens the sample list
    page.keyboard.press("Tab")
    after = page.evaluate(FOCUSED)
    assert after["tag"] == "INPUT" and after["label"] == "fcn32s", after  # the next control: the models
    expect(page.locator("[role=listbox]")).to_have_count(0)  # and the list closed behind it
    assert after["ring"] >= 2, after  # a ring that shows, not Gradio's faint 1 px
    seen += tab_until(page, lambda f: f["id"] == "segment")
    stray = [(f["tag"], f["role"]) for f in seen if f["tag"] == "BODY" or f["role"] == "listbox"]
    assert not stray, (stray, [(f["tag"], f["id"], f["label"]) for f in seen])


def test_sam_is_prompted_by_keyboard(server, page, sample):
    from playwright.sync_api import expect

    note = sam_photo(page, server, sample[0])
    page.locator("#sam-mode input").first.focus()  # from the click mode above the photo, by Tab alone
    tab_until(page, lambda f: f["id"] == "sam-canvas")
    assert page.evaluate(FOCUSED)["outline"] >= 2  # the photo shows it has the focus
    crosshair = page.locator("#sam-crosshair")
    expect(crosshair).to_be_visible()
    start = crosshair.bounding_box()
    for _ in range(10):
        page.keyboard.press("ArrowDown")
    moved = crosshair.bounding_box()
    assert moved["y"] > start["y"] + 10 and moved["x"] == pytest.approx(start["x"], abs=1)
    page.keyboard.press("Enter")  # a click in the chosen mode (positive) where the cross-hair is
    expect(note).to_contain_text("object 1: 1 prompt(s)", timeout=60_000)
    page.keyboard.press("Shift+ArrowUp")
    last_click_answered(page)  # a key's click, like the mouse's, waits for the last one's event to close
    page.keyboard.press("n")  # a negative point there; the mode radio follows
    expect(note).to_contain_text("object 1: 2 prompt(s)", timeout=60_000)
    expect(page.locator("#sam-mode input:checked")).to_have_value("negative")
    page.keyboard.press("Shift+ArrowLeft")
    last_click_answered(page)
    page.keyboard.press("b")  # a box: one corner, then the opposite one
    expect(note).to_contain_text("opposite corner", timeout=60_000)
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    last_click_answered(page)
    page.keyboard.press("b")
    expect(note).to_contain_text("object 1: 3 prompt(s)", timeout=60_000)
    page.locator("#sam-undo").focus()  # the cross-hair shows only while the photo has the focus
    expect(crosshair).to_be_hidden()
