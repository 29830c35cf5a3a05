"""What a person saw cut, hidden, scrolled away or out of order, at a laptop's width and a phone's, in
a real headless Chromium: Compare, Prompt SAM and the Leaderboard. Screenshots go to
artifacts/screenshots/ for a person to look at."""

import pytest

from conftest import SCREENSHOTS, click_when_answered, photo_and_truth, photo_box

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # a real browser, seconds a test (docs/testing.md)

SIZES = {"1440x900": {"width": 1440, "height": 900}, "390x844": {"width": 390, "height": 844}}
PHONE = "390x844"


def cut(locator) -> list[str]:
    """The texts of the elements matched whose content is wider than their box (cut or ellipsed)."""
    return locator.evaluate_all("els => els.filter(e => e.innerText.trim() && e.scrollWidth > e.clientWidth + 1)"
                                ".map(e => e.innerText)")


def broken_words(locator) -> list[str]:
    """The words of the elements matched that are split over two lines ("param / s (M)"); a hyphen is
    a place a line may break ("fine- / tuned")."""
    return locator.evaluate_all("""els => els.flatMap(e => {
        const found = [], walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const m of node.data.matchAll(/[^\\s-]+/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                if (lines.size > 1) found.push(m[0]);
            }
        }
        return found; })""")


def box(locator) -> dict:
    """The picture's box in the viewport, scrolled into view first (a tap needs it on screen), once it
    has loaded and stays put."""
    locator.scroll_into_view_if_needed()
    return photo_box(locator)


def page_top(locator) -> float:
    """Where the element starts on the page, however far the page is scrolled."""
    return locator.evaluate("e => e.getBoundingClientRect().top + window.scrollY")


@pytest.mark.parametrize("size", SIZES)
def test_nothing_is_cut_or_hidden_at_a_laptops_and_a_phones_width(server, chromium, sample, size):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone = size == PHONE
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport=SIZES[size], is_mobile=phone, has_touch=phone)  # a phone has no hover
        tap = page.touchscreen.tap if phone else page.mouse.click
        page.goto(server)
        page.get_by_text("Segmentation explorer").first.wait_for()
        examples = page.locator("#examples button")
        expect(examples).to_have_count(5, timeout=30_000)
        assert cut(examples) == []  # each example named in full
        photo_and_truth(page, *sample)
        page.locator("#segment").click()
        expect(page.locator("#look-text")).to_contain_text("wrong", timeout=120_000)
        tiles = page.locator("#predictions img")
        expect(tiles).to_have_count(12, timeout=30_000)
        title = page.locator("#predictions-title").bounding_box()
        first = tiles.first.bounding_box()
        assert first["y"] >= title["y"] + title["height"]  # the first row below the title, none under it
        assert first["width"] >= (300 if phone else 150)  # a phone shows one prediction per row
        assert cut(page.locator("#predictions .caption-label")) == []
        headers = page.locator("#metrics th")
        right = page.viewport_size["width"]
        for i in range(headers.count()):  # every metric in view without scrolling the table sideways
            header = headers.nth(i).bounding_box()
            assert header["x"] + header["width"] <= right + 1, headers.nth(i).inner_text()
        for table in ("#metrics", "#timing"):  # headers break between words; no figure is cut ("262" for 2626)
            assert broken_words(page.locator(f"{table} th")) == [], table
            assert cut(page.locator(f"{table} td .cell-wrap")) == [], table
        if phone:  # the measurements before the gallery of pictures, not after 12 to 21 tiles
            assert page_top(page.locator("#metrics")) < page_top(page.locator("#predictions"))
        downloads = page.locator("#downloads .filename")  # each file's whole name, not "camvid_... .png"
        expect(downloads.first).to_be_visible(timeout=30_000)
        assert cut(downloads) == [] and cut(page.locator("#downloads .filename .stem")) == []
        assert page.locator("#photo img").first.get_attribute("alt")  # the photo and the charts say what they show
        look = page.locator("#look-image img")
        look.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('#look-image img').complete")
        frame, picture = page.locator("#look-image").bounding_box(), look.bounding_box()
        assert frame["height"] <= picture["height"] + 80, (frame, picture)  # the box as tall as its picture
        assert page.locator("#confusion img").get_attribute("alt")
        page.locator("#counts").get_by_text("Pixel counts").click()
        counts = page.locator("#confusion-counts table")
        counts.wait_for()
        if not phone:  # full width: every column in view
            assert counts.evaluate("t => t.getBoundingClientRect().right") <= right + 1
        else:  # 14 columns cannot fit a phone: they scroll sideways in their box, none cut off for good
            assert counts.evaluate("""t => { for (let e = t.parentElement; e; e = e.parentElement) {
                const o = getComputedStyle(e).overflowX;
                if (o === 'auto' || o === 'scroll') return e.scrollWidth > e.clientWidth; } return false; }""")
        page.get_by_text("Where do two models disagree?").click()  # filled by the comparison, not stale
        expect(page.locator("#diff-text")).to_contain_text("They differ on", timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / f"compare_{size}.png"), full_page=True)

        page.get_by_role("tab", name="Prompt SAM").click()
        page.locator("#from-compare").click()
        canvas = page.locator("#sam-canvas img").first
        canvas.wait_for(timeout=30_000)
        page.locator("#sam-note").get_by_text("Click the object").wait_for(timeout=30_000)
        click_when_answered(page, 0.5, 0.75, tap)
        masks = page.locator("#sam-masks img")
        expect(masks).to_have_count(3, timeout=60_000)
        label = page.locator("#sam-masks label, #sam-masks .label").first.bounding_box()
        tiles = [photo_box(masks.nth(i)) for i in range(3)]  # each measured once loaded and still
        gallery = page.locator("#sam-masks").bounding_box()
        for tile in tiles:  # all three of SAM's masks in the gallery's box: none scrolled away
            assert gallery["y"] <= tile["y"] and tile["y"] + tile["height"] <= gallery["y"] + gallery["height"] + 1
            assert tile["y"] >= label["y"] + label["height"] - 1  # none under the gallery's label
            assert tile["width"] >= 90  # a third of a phone's width at least
        area = page.locator("#sam-canvas").bounding_box()
        if phone:  # right under the photo, side by side
            assert len({round(t["y"]) for t in tiles}) == 1 and tiles[0]["y"] >= area["y"] + area["height"] - 1
            assert tiles[0]["y"] - (area["y"] + area["height"]) < 400, (tiles[0], area)
        else:  # beside the photo, which takes most of the width
            assert all(t["x"] >= area["x"] + area["width"] - 1 for t in tiles) and area["width"] > 0.6 * right
            bar = page.locator("#sam-bar").bounding_box()  # the click mode and the object actions: one bar
            assert bar["height"] < 160 and bar["y"] + bar["height"] <= area["y"] + 1
        assert cut(page.locator("#sam-masks .caption-label")) == []
        assert "IoU" in page.locator("#sam-masks").inner_text()
        assert page.locator("#sam-clear").inner_text() == "Clear this object's clicks"
        status = page.locator("#sam-live").inner_text()  # where there is no hover, it speaks of taps
        assert ("Hover" not in status) if phone else ("Hover" in status or "hover" in status), status
        source = page.locator("#sam-everything-from")
        source.locator("input").click()
        page.get_by_role("option", name="U-Net (from scratch)'s regions (each object with its class)",
                         exact=True).click()
        expect(page.locator("#sam-everything")).to_contain_text("U-Net (from scratch)'s regions")
        assert page_top(source) < page_top(page.locator("#sam-everything"))  # the source first, then the button
        page.screenshot(path=str(SCREENSHOTS / f"sam_{size}.png"), full_page=True)

        # the Leaderboard's tab sits in the tab bar's overflow menu on a phone: open it at a laptop's width
        page.set_viewport_size(SIZES["1440x900"])
        page.get_by_role("tab", name="Leaderboard").click()
        page.set_viewport_size(SIZES[size])
        board = page.locator("#leaderboard")
        expect(board).to_contain_text("58.4", timeout=30_000)  # U-Net's figure on the test split
        page.wait_for_timeout(500)
        assert broken_words(board.locator("th")) == [] and broken_words(board.locator("td")) == []
        assert cut(board.locator("td .cell-wrap")) == []  # every cell whole ("trained" was cut)
        # every row in the page's own flow: no scroll inside the table hides the last rows (ESPNet's, the
        # fast ensemble's and the replaced models' were below its fold)
        inner = board.evaluate("b => [...b.querySelectorAll('*')].filter(e => e.scrollHeight > e.clientHeight + 2 "
                               "&& ['auto', 'scroll'].includes(getComputedStyle(e).overflowY)).length")
        assert inner == 0, f"{inner} element(s) of the leaderboard scroll inside it"
        expect(board).to_contain_text("(replaced")  # the last rows are rendered
        if phone:  # the table keeps readable columns and scrolls sideways, and says so
            assert board.evaluate("b => b.parentElement.scrollWidth > b.parentElement.clientWidth")
            expect(page.get_by_text("The table scrolls sideways")).to_be_visible()
        else:
            expect(page.get_by_text("The table scrolls sideways")).to_be_hidden()
        assert page.locator(".chart img").first.get_attribute("alt")
        page.screenshot(path=str(SCREENSHOTS / f"leaderboard_{size}.png"), full_page=True)
        browser.close()
