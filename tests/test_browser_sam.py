"""What the app sends a browser for SAM's decoder: the pinned runtime (its integrity hash checked
against the npm package), the exported graphs and one float16 embedding per photo, served and bounded."""

import base64
import hashlib
import urllib.error
import urllib.request

import numpy as np
import pytest

from seg.sam.model import Sam
from seg.sam.onnx_decoder import export_decoder
from seg.sam.weights import build_sam
from ui.gradio_private import open_event
from ui.tabs.sam.browser import ORT_WEB_CDN, ORT_WEB_INTEGRITY, ORT_WEB_SCRIPT, BrowserSam, served_url

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


@pytest.fixture(scope="module")
def sam(vit_t_checkpoint, tmp_path_factory):
    model = build_sam("vit_t", vit_t_checkpoint)
    return Sam(model, variant="vit_t", onnx=export_decoder(model, variant="vit_t",
                                                           cache_dir=tmp_path_factory.mktemp("onnx")))


def test_the_pinned_integrity_hash_is_the_npm_packages_file(ort_web):
    digest = base64.b64encode(hashlib.sha384((ort_web / ORT_WEB_SCRIPT).read_bytes()).digest()).decode()
    assert ORT_WEB_INTEGRITY == f"sha384-{digest}"


def test_the_runtime_comes_from_the_cdn_or_a_local_folder(tmp_path, ort_web):
    cdn = BrowserSam(tmp_path / "e", clicks_per_object=8).runtime()
    assert cdn["script"] == ORT_WEB_CDN + ORT_WEB_SCRIPT and cdn["integrity"] == ORT_WEB_INTEGRITY
    assert cdn["base"].startswith("https://cdn.jsdelivr.net/npm/onnxruntime-web@")
    local = BrowserSam(tmp_path / "e", runtime_dir=ort_web, clicks_per_object=8)
    assert local.runtime()["script"] == served_url(ort_web / ORT_WEB_SCRIPT) and local.runtime()["integrity"] is None
    assert str(ort_web.resolve()) in local.served(tmp_path / "onnx")


def test_each_photo_gets_one_float16_embedding_file_and_old_ones_go(sam, tmp_path):
    browser = BrowserSam(tmp_path / "embeddings", keep=2, clicks_per_object=8)
    photos = [np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(3)]
    assert browser.embedding(sam, photos[0], compute=False) is None  # not read yet: nothing computed
    runs = sam.encoder_runs
    url = browser.embedding(sam, photos[0], compute=True)
    assert browser.embedding(sam, photos[0], compute=True) == url and sam.encoder_runs == runs + 1
    written = list((tmp_path / "embeddings").glob("*.f16"))
    assert len(written) == 1 and written[0].stat().st_size == 256 * 64 * 64 * 2
    expected = sam.embed(photos[0]).features.numpy().astype(np.float16)
    np.testing.assert_array_equal(np.frombuffer(written[0].read_bytes(), "<f2").reshape(1, 256, 64, 64), expected)
    for photo in photos[1:]:
        browser.embedding(sam, photo, compute=True)
    assert len(list((tmp_path / "embeddings").glob("*.f16"))) == 2  # the oldest removed
    assert browser.embedding(sam, photos[0], compute=False) is None


def test_the_value_names_the_photo_its_frame_and_the_clicks(sam, tmp_path):
    browser = BrowserSam(tmp_path / "embeddings", clicks_per_object=8)
    assert browser.value(Sam(sam.model, variant="vit_t"), None, ()) is None  # no exported decoder: no browser path
    empty = browser.value(sam, None, ())
    assert set(empty) == {"runtime", "decoder", "rules", "shapes", "busy"}
    assert empty["decoder"]["int8"].endswith("decoder_int8.onnx")
    assert empty["busy"] == open_event("sam-note")  # the page holds a click back while the last one's event is open
    # the page builds SAM's prompt by the server's schema, not by a copy of it
    assert empty["rules"] == {"labels": {"positive": 1, "negative": 0}, "box": "box", "box_labels": [2, 3],
                              "padding_label": -1, "clicks_per_object": 8}
    photo = np.zeros((360, 480, 3), np.uint8)
    value = browser.value(sam, photo, ((10.0, 20.0, "positive"),), compute=True)
    assert value["size"] == [360, 480] and value["input"] == [768, 1024]
    assert value["clicks"] == [[10.0, 20.0, "positive"]] and value["embedding"].endswith(".f16")


def test_the_server_serves_the_decoder_and_embeddings_but_not_the_checkpoint(app, server, sample, vit_t_checkpoint):
    from seg.sam.prompts import Objects

    value = app.sam.embed(app.ctx.photo(str(sample[0])), Objects())
    for url in (value["embedding"], value["decoder"]["float32"], value["runtime"]["script"]):
        with urllib.request.urlopen(server + url, timeout=30) as answer:
            assert answer.status == 200 and len(answer.read()) > 1000
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server + served_url(vit_t_checkpoint), timeout=30)
    assert refused.value.code in (403, 404)
