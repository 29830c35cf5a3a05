"""The SAM family in a real headless Chromium: one object's click sent to every SAM, and SAM 3's phrase
turned into objects (the tests' app serves the small SAM 2, SAM 3 tracker and SAM 3 of
tests/tiny_sams.py). Screenshots go to artifacts/screenshots/."""

import pytest

from conftest import SCREENSHOTS, click_when_answered, sam_photo

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # a real browser, seconds a test (docs/testing.md)


def test_every_sam_answers_the_click_and_a_phrase_finds_objects(server, page, sample):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    note = sam_photo(page, server, sample[0])
    click_when_answered(page, 0.5, 0.75)
    expect(note).to_contain_text("object 1: 1 prompt(s)", timeout=60_000)

    page.locator("#sam-family").get_by_text("Every SAM on this object").click()
    costs = page.locator("#sam-family-costs")
    expect(costs).to_contain_text("MobileSAM (vit_t): has read this photo", timeout=30_000)  # said before asking
    page.locator("#sam-family-go").click()
    expect(page.locator("#sam-family-masks img")).to_have_count(3, timeout=120_000)
    table = page.locator("#sam-family-table")
    for title in ("MobileSAM (vit_t)", "SAM 2 (tiny-sam2)", "SAM 3 (tiny-sam3)"):
        expect(table).to_contain_text(title)
    expect(costs).to_contain_text("SAM 3 (tiny-sam3): has read this photo")  # what a next prompt costs
    expect(page.locator("#sam-family-agreement")).to_contain_text("IoU with")
    page.locator("#sam-family").screenshot(path=str(SCREENSHOTS / "sam_family.png"))

    # SAM 2 chosen to answer the clicks: the object is answered by it at once, and the page, which decodes
    # the default SAM only, stops previewing and says why
    page.locator("#sam-answering input").click()
    page.get_by_role("option", name="SAM 2 (tiny-sam2)", exact=True).click()
    expect(note).to_contain_text("answered by SAM 2 (tiny-sam2)", timeout=60_000)
    page.locator("#sam-canvas img").first.hover()
    expect(page.locator("#sam-live")).to_contain_text("No previews here", timeout=10_000)
    click_when_answered(page, 0.3, 0.4)
    expect(note).to_contain_text("object 1: 2 prompt(s); the best of 3 masks is shown (answered by SAM 2",
                                 timeout=60_000)

    page.locator("#sam-concepts").get_by_text("Find by name with SAM 3").click()
    page.locator("#sam-text textarea, #sam-text input").first.fill("car")
    threshold = page.locator("#sam-text-threshold input[type=number]")
    threshold.fill("0.05")  # the small random SAM 3 scores about 0.25
    threshold.press("Enter")
    page.locator("#sam-text-go").click()
    expect(note).to_contain_text("instance(s) of \"car\", class Car", timeout=120_000)
    expect(page.locator("#sam-objects")).to_contain_text("car 1")
