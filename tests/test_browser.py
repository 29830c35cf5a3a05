"""The app in a real headless Chromium (Debian's, driven by Playwright): upload a photo and its
ground truth, compare models, then click two points for SAM. Screenshots go to
artifacts/screenshots/ for a person to look at."""

import re

import pytest

from conftest import SCREENSHOTS, click_when_answered, photo_and_truth, photo_box

pytestmark = [pytest.mark.slow, pytest.mark.browser]  # a real browser, seconds a test (docs/testing.md)


@pytest.fixture
def shipped_server(vit_t_checkpoint, tmp_path):
    """The app on the weights we ship (the README's screenshot shows what a visitor sees), a random
    MobileSAM, no pretrained models; on a free loopback port."""
    from conftest import free_port
    from ui.app import build
    from ui.settings import Settings

    app = build(Settings(pretrained=(), sam_checkpoint=vit_t_checkpoint, sam_variant="vit_t",
                         cache_dir=tmp_path / "cache", browser_decoder=False))
    port = free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **app.launch_options())
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()
    app.close()


def test_the_readme_screenshot_is_the_compare_tab_on_a_camvid_example(shipped_server, page):
    """The README's picture: a CamVid val example with its labels, the default models compared by
    the shipped weights. Written to artifacts/screenshots/readme_compare.jpg; docs/compare.jpg is a
    copy of it."""
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(shipped_server)
    page.get_by_text("Segmentation explorer").first.wait_for()
    page.locator("#examples").get_by_text("CamVid 0016E5_08085").first.click()  # the photo and its labels
    page.locator("#photo img").first.wait_for(timeout=30_000)
    page.locator("#segment").click()
    expect(page.locator("#metrics")).to_contain_text("U-Net", timeout=120_000)
    page.locator("#predictions img").nth(11).wait_for(timeout=120_000)
    assert "label ids" in page.locator("body").inner_text()  # the example came with its ground truth
    page.locator("#predictions").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # the tiles are drawn after they arrive
    page.screenshot(path=str(SCREENSHOTS / "readme_compare.jpg"), type="jpeg", quality=85)


def test_compare_then_prompt_sam_in_a_browser(server, page, sample):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server)
    page.get_by_text("Segmentation explorer").first.wait_for()
    photo_and_truth(page, *sample)
    page.locator("#segment").click()
    # the ground truth's row, then overlay, errors and boundaries for each of the three models
    page.locator("#predictions img").nth(11).wait_for(timeout=120_000)
    expect(page.locator("#metrics")).to_contain_text("U-Net", timeout=30_000)
    table = page.locator("#metrics").inner_text()
    assert all(m in table for m in ("mIoU", "boundary F", "FCN-32s", "FCN-8s"))
    assert "label ids" in page.locator("body").inner_text()  # the ground truth's format is stated
    gallery = page.locator("#predictions").inner_text()
    assert "ground truth" in gallery and "wrong" in gallery and "boundary F" in gallery
    page.locator("#confusion img").wait_for(timeout=60_000)  # the closer look opens on the first model
    expect(page.locator("#look-text")).to_contain_text("wrong", timeout=30_000)
    last = page.locator("#predictions img").nth(11).bounding_box()  # every tile in view: none scrolled inside
    assert last["height"] > 50 and page.locator("#predictions img").nth(11).is_visible()
    page.screenshot(path=str(SCREENSHOTS / "compare.png"), full_page=True)
    page.locator("#look-view").get_by_text("boundaries").click()
    page.locator("#look-model").get_by_text("U-Net (from scratch)").click()  # the last event: its answer is final
    expect(page.locator("#look-text")).to_contain_text("U-Net", timeout=60_000)
    page.wait_for_timeout(1000)  # the picture is drawn after the text arrives
    page.locator("#look-image").screenshot(path=str(SCREENSHOTS / "compare_closer_look.png"))

    page.get_by_role("tab", name="Prompt SAM").click()
    page.locator("#from-compare").click()
    canvas = page.locator("#sam-canvas img").first
    canvas.wait_for(timeout=30_000)
    page.locator("#sam-note").get_by_text("Click the object").wait_for(timeout=30_000)
    for fx, fy in ((0.5, 0.75), (0.3, 0.4)):  # two clicks: road, then a second positive point
        click_when_answered(page, fx, fy)
        page.locator("#sam-note").get_by_text(f"{1 if fx == 0.5 else 2} prompt(s)").wait_for(timeout=120_000)
    assert page.locator("#sam-masks img").count() >= 3  # multimask output, each with its score
    assert "IoU" in page.locator("#sam-masks").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "sam.png"), full_page=True)

    # the click curve against the ground truth Compare sent along with its photo
    page.locator("#curve").get_by_text("SAM's click curve against the ground truth").click()
    expect(page.locator("#curve-object input")).to_have_value(re.compile(r" px · around "), timeout=30_000)
    page.locator("#curve-go").click()
    expect(page.locator("#curve-text")).to_contain_text("NoC@90", timeout=120_000)
    page.locator("#curve-chart img").wait_for(timeout=30_000)
    page.locator("#curve").screenshot(path=str(SCREENSHOTS / "sam_click_curve.png"))

    # a second object, then export both; a reload brings both back from the browser's storage
    page.locator("#sam-add").click()
    page.locator("#sam-note").get_by_text("object 2: click the object").wait_for(timeout=30_000)
    click_when_answered(page, 0.8, 0.2)
    page.locator("#sam-note").get_by_text("object 2: 1 prompt(s)").wait_for(timeout=120_000)
    expect(page.locator("#sam-objects")).to_contain_text("object 2")
    page.locator("#sam-export").click()
    expect(page.locator("#sam-files")).to_contain_text("objects_coco", timeout=60_000)  # the name wraps at the dot
    page.screenshot(path=str(SCREENSHOTS / "sam_objects.png"), full_page=True)
    page.wait_for_timeout(1500)  # the save to local storage follows the last change
    print("STORED", str(page.evaluate("JSON.stringify(localStorage)"))[:500])
    page.reload()
    page.get_by_role("tab", name="Prompt SAM").click()
    page.locator("#sam-note").get_by_text("2 object(s) from your last visit are back").wait_for(timeout=120_000)
    expect(page.locator("#sam-objects")).to_contain_text("object 1")
    expect(page.locator("#sam-objects")).to_contain_text("object 2")
    page.locator("#sam-canvas img").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "sam_after_reload.png"), full_page=True)


def test_learn_and_leaderboard_tabs_in_a_browser(server, page):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server)
    page.get_by_role("tab", name="Learn").click()
    page.locator("#scene-preds img").nth(3).wait_for(timeout=60_000)  # the first scene, shown on opening
    assert page.locator("#scene-preds img").first.bounding_box()["width"] >= 256  # a boundary can be seen
    page.locator("#new-scene").click()
    page.locator("#scene-preds img").nth(3).wait_for(timeout=60_000)  # ground truth + three models
    page.locator("#train").click()
    expect(page.locator("#race-text")).to_contain_text("After 50 steps", timeout=300_000)
    page.screenshot(path=str(SCREENSHOTS / "learn.png"), full_page=True)
    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#leaderboard")).to_contain_text("FCN-8s", timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"), full_page=True)


def test_sam_decodes_hovers_and_clicks_in_the_browser(app, server, page, sample):
    """Upload, hover (a preview decoded by this page), click (its mask at once, then the server's),
    a second object, undo, export. The browser's click mask is compared with the server's own."""
    import numpy as np
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server)
    page.get_by_role("tab", name="Prompt SAM").click()
    page.locator("#sam-canvas input[type=file]").set_input_files(str(sample[0]))
    expect(page.locator("#sam-live")).to_contain_text("decoded in this browser", timeout=120_000)
    canvas = page.locator("#sam-canvas img").first
    box = photo_box(canvas)

    def at(fx, fy):
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(0.45, 0.7))
    page.wait_for_function("() => samLive.timings.some(t => t.kind === 'preview')", timeout=30_000)
    # the overlay lies exactly over the photo's pixels (shown centred, never enlarged)
    overlay = page.locator("#sam-live-overlay").bounding_box()
    natural = page.evaluate("(() => { const i = document.querySelector('#sam-canvas img'); "
                            "return [i.naturalWidth, i.naturalHeight]; })()")
    scale = min(box["width"] / natural[0], box["height"] / natural[1], 1)
    assert abs(overlay["width"] - natural[0] * scale) < 1 and abs(overlay["height"] - natural[1] * scale) < 1
    assert abs(overlay["x"] - (box["x"] + (box["width"] - overlay["width"]) / 2)) < 1
    assert abs(overlay["y"] - (box["y"] + (box["height"] - overlay["height"]) / 2)) < 1
    page.screenshot(path=str(SCREENSHOTS / "sam_hover_preview.png"), full_page=True)

    page.mouse.click(*at(0.45, 0.7))
    page.wait_for_function("() => samLive.timings.some(t => t.decoder === 'float32')", timeout=30_000)
    page.locator("#sam-note").get_by_text("object 1: 1 prompt(s)").wait_for(timeout=60_000)
    clicks = page.evaluate("samLive.clicks")
    assert len(clicks) == 1 and clicks[0][2] == "positive"
    mask = page.evaluate("(() => { const m = samLive.masks.click; return [m.width, m.height, Array.from(m.data)]; })()")
    width, height, data = mask
    ours = np.array(data, dtype=bool).reshape(height, width)
    image = app.ctx.photo(str(sample[0])).pixels
    theirs = app.ctx.zoo.sam().predict(image, points=[clicks[0][:2]], labels=[1]).masks[0]  # the server's shown mask
    assert ours.shape == theirs.shape
    iou = (ours & theirs).sum() / max((ours | theirs).sum(), 1)
    print(f"browser click mask vs the server's: IoU {iou:.5f}, {ours.mean():.3f} of the photo")
    assert iou > 0.99

    page.locator("#sam-add").click()
    page.locator("#sam-note").get_by_text("object 2: click the object").wait_for(timeout=30_000)
    page.mouse.move(*at(0.8, 0.25))
    page.wait_for_timeout(300)
    page.mouse.click(*at(0.8, 0.25))
    # a click made before the server closes the last one's event is dropped by Gradio, and the page
    # says so rather than showing a mask for it: each click is either answered or announced
    page.wait_for_function("() => document.querySelector(samLive.value.busy)", timeout=10_000)
    page.mouse.click(*at(0.6, 0.2))
    page.locator("#sam-note").get_by_text("object 2: 1 prompt(s)").wait_for(timeout=60_000)
    page.wait_for_function("() => !document.querySelector(samLive.value.busy)", timeout=60_000)
    answered = page.evaluate("samLive.clicks.length")
    dropped = page.evaluate("samLive.dropped || 0")
    print(f"a second click while the first was open: {'dropped and announced' if dropped else 'answered'}")
    assert answered + dropped == 2 and answered >= 1, (answered, dropped)
    if dropped:
        expect(page.locator("#sam-live")).to_contain_text("Still answering the previous click")
    else:  # the server had answered before the second click: it counts
        page.locator("#sam-undo").click()
        page.locator("#sam-note").get_by_text("object 2: 1 prompt(s)").wait_for(timeout=60_000)
        page.wait_for_function("() => !document.querySelector(samLive.value.busy)", timeout=60_000)
    click_when_answered(page, 0.7, 0.3)  # as a person is told: once the last click's event has closed
    try:
        page.locator("#sam-note").get_by_text("object 2: 2 prompt(s)").wait_for(timeout=60_000)
    except PlaywrightTimeout:  # say what the page knew (once seen only with two suites sharing the cores)
        state = page.evaluate("({clicks: samLive.clicks.length, dropped: samLive.dropped || 0, "
                              "busy: !!document.querySelector(samLive.value.busy), "
                              "said: document.querySelector('#sam-live').innerText, "
                              f"under: document.elementFromPoint({at(0.7, 0.3)[0]}, {at(0.7, 0.3)[1]})?.outerHTML"
                              ".slice(0, 160)})")
        raise AssertionError(f"the third click of object 2 was not answered in 60 s: {state}") from None
    page.wait_for_function("() => !document.querySelector(samLive.value.busy)", timeout=60_000)
    # previews come back after a click, whichever was on screen first: the server's picture or ours
    page.wait_for_function("() => samLive.timings.filter(t => t.decoder === 'float32').length >= 3", timeout=30_000)
    previews = page.evaluate("samLive.timings.filter(t => t.kind === 'preview').length")
    page.mouse.move(*at(0.3, 0.4))
    page.wait_for_function(f"() => samLive.timings.filter(t => t.kind === 'preview').length > {previews}",
                           timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "sam_two_objects.png"), full_page=True)
    page.locator("#sam-undo").click()
    page.locator("#sam-note").get_by_text("object 2: 1 prompt(s)").wait_for(timeout=60_000)
    page.wait_for_function("() => samLive.clicks.length === 1", timeout=10_000)  # the browser follows the undo
    page.locator("#sam-export").click()
    expect(page.locator("#sam-files")).to_contain_text("objects_coco", timeout=60_000)
    expect(page.locator("#sam-files")).to_contain_text("object_2", timeout=10_000)
    page.screenshot(path=str(SCREENSHOTS / "sam_browser_export.png"), full_page=True)
    timings = page.evaluate("samLive.timings")
    print("browser decoder timings (ms):", [(t["kind"], t["decoder"], t["total_ms"] and round(t["total_ms"]))
                                            for t in timings])
