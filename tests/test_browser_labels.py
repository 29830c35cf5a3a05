"""SAM as labeller and refiner in a real headless Chromium: an object clicked, given a class and sent
to Compare as its ground truth, which then scores the models; and a model refined by SAM in Compare.
Screenshots go to artifacts/screenshots/."""

import pytest

from conftest import SCREENSHOTS, click_when_answered, sam_photo

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # a real browser, seconds a test (docs/testing.md)


def test_a_clicked_object_with_a_class_becomes_the_compare_tabs_ground_truth(server, page, sample):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    note = sam_photo(page, server, sample[0])
    page.locator("#from-compare").click()  # Compare has no photo: refused, and the photo here stays
    refused = page.get_by_text("Compare has no photo yet").first
    expect(refused).to_be_visible(timeout=30_000)
    page.wait_for_timeout(11_000)  # Gradio's own toasts vanish after 10 s: a refusal stays until closed
    expect(refused).to_be_visible()
    expect(note).to_contain_text("Click the object")
    assert page.locator("#sam-canvas img").first.is_visible()  # the refusal covers nothing
    page.get_by_test_id("toast-close").first.click()
    click_when_answered(page, 0.5, 0.75)  # the road
    expect(note).to_contain_text("object 1: 1 prompt(s)", timeout=60_000)
    page.locator("#sam-truth-go").click()  # no class yet: refused, saying what to do
    expect(page.get_by_text("has no class: pick one of Sky").first).to_be_visible(timeout=30_000)
    masks = page.locator("#sam-masks img")
    expect(masks).to_have_count(3, timeout=30_000)
    page.locator("#sam-class").get_by_text("Road", exact=True).click()
    expect(note).to_contain_text("object 1: Road.", timeout=30_000)
    expect(masks).to_have_count(3)  # the class changes no mask: SAM's three stay to choose from
    expect(page.locator("#sam-objects")).to_contain_text("object 1 (Road)")
    page.locator("#sam-truth-go").click()  # the page turns to Compare, with the photo and its truth
    expect(page.get_by_role("tab", name="Compare")).to_have_attribute("aria-selected", "true", timeout=60_000)
    expect(page.locator("#truth")).to_contain_text("_sam_labels", timeout=30_000)
    expect(page.get_by_text("press Segment to compare them")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(500)
    photo = page.locator("#photo").bounding_box()  # scrolled to: the photo and truth just sent are in view
    assert -2 <= photo["y"] < page.viewport_size["height"] / 2, photo
    page.get_by_role("tab", name="Prompt SAM").click()  # and the truth's PNGs wait in the SAM tab
    expect(note).to_contain_text("is in Compare")
    expect(page.locator("#sam-truth-files")).to_contain_text("_sam_labels")
    expect(page.locator("#sam-truth-files")).to_contain_text("_sam_colour")
    page.screenshot(path=str(SCREENSHOTS / "sam_ground_truth.png"), full_page=True)

    page.get_by_role("tab", name="Compare").click()
    page.locator("#refine-with input").click()
    page.get_by_role("option", name="U-Net (from scratch)").click()
    page.locator("#segment").click()
    expect(page.locator("#metrics")).to_contain_text("U-Net + SAM", timeout=180_000)
    expect(page.locator("#metrics")).to_contain_text("change with SAM")
    expect(page.get_by_text("Ground truth read as: label ids")).to_be_visible()
    page.locator("#predictions img").nth(3 * 5 - 1).wait_for(timeout=60_000)  # truth row + 4 models' rows
    page.screenshot(path=str(SCREENSHOTS / "compare_refined.png"), full_page=True)
    # another photo: the results of this one leave the page, and the note says to segment again
    page.locator("#photo input[type=file]").set_input_files(str(sample[0]))
    expect(page.locator("#predictions img")).to_have_count(0, timeout=30_000)
    expect(page.get_by_text("press Segment to compare them")).to_be_visible()
    expect(page.locator("#metrics")).not_to_contain_text("U-Net")
