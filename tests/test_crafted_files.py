"""Small crafted files that are slow to open or decode: refused by their structure before Pillow sees
them, and any decoding that does start ended at its deadline in a child process that is replaced.
The files are made here, as an attacker makes them; the app is then sent them while another client
is served."""

import io
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from seg.data.decoder import Decoder
from seg.data.io import read_image, read_raw
from seg.data.screen import MAX_JPEG_SCANS, screen
from seg.deadline import DeadlineExceeded, Stopped, deadline


def progressive(size: tuple[int, int], scans: int) -> bytes:
    """A flat progressive JPEG of `size` (W, H) whose last scan is repeated until it has `scans`: each
    repeat is a few bytes and makes the decoder pass over the whole image again."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    return data[:end] + data[last:end] * (scans - data.count(b"\xff\xda")) + b"\xff\xd9"


def ico_holding(png: bytes, claimed: int = 256) -> bytes:
    """An ICO whose one directory entry says `claimed` x `claimed` (0 means 256) but holds `png`."""
    entry = struct.pack("<BBBBHHII", claimed % 256, claimed % 256, 0, 0, 1, 32, len(png), 6 + 16)
    return struct.pack("<HHH", 0, 1, 1) + entry + png


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("crafted")
    files = {}

    def write(name: str, data: bytes):
        (folder / name).write_bytes(data)
        files[name] = folder / name

    write("scans.jpg", progressive((2000, 2000), 100_000))  # the file: 1.4 MB, minutes to decode
    big = io.BytesIO()
    Image.fromarray(np.zeros((13000, 13000), np.uint8)).save(big, "PNG")
    write("icon.ico", ico_holding(big.getvalue()))  # 169 MP behind a 256x256 directory
    del big
    header = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
    chunks = b"".join(png_chunk(b"tEXt", b"") for _ in range(60_000))  # 720 kB of empty chunks, 60,000 loops
    write("chunks.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + chunks
          + png_chunk(b"IDAT", zlib.compress(b"\0" * 65 * 64)) + png_chunk(b"IEND", b""))
    plain = io.BytesIO()
    Image.new("RGB", (64, 64)).save(plain, "JPEG")
    data = plain.getvalue()
    app0 = 4 + struct.unpack_from(">H", data, 4)[0]  # SOI, then APP0's marker and its length
    write("stray.jpg", data[:app0] + b"\x00" * 100_000 + data[app0:])  # Pillow skips each stray byte in Python
    bmp = io.BytesIO()
    Image.new("P", (64, 64)).save(bmp, "BMP")
    rle = bytearray(bmp.getvalue())
    rle[30:34] = struct.pack("<I", 1)  # RLE8: decoded by Pillow in Python, one loop per run
    write("rle.bmp", bytes(rle))
    gif = io.BytesIO()
    Image.new("P", (64, 64)).save(gif, "GIF")
    gif = gif.getvalue()
    start = 13 + (3 << ((gif[10] & 7) + 1))  # after the screen descriptor and the global colour table
    write("comments.gif", gif[:start] + b"\x21\xfe\x00" * 1_000_000 + gif[start:])  # 3 MB: 12 s to open
    return files


@pytest.mark.parametrize("name, message", [
    ("scans.jpg", f"its 100,000 scans are more than the {MAX_JPEG_SCANS}"),
    ("icon.ico", "not a readable image: send JPEG, PNG, WEBP, GIF or BMP"),
    ("chunks.png", "more than 50,000 chunks"),
    ("stray.jpg", "markers or stray bytes before its image data"),
    ("rle.bmp", "run-length"),
    ("comments.gif", "more than 10,000 blocks or stray bytes before its first image"),
])
def test_a_crafted_file_is_refused_by_its_structure_before_decoding(crafted, name, message):
    with pytest.raises(ValueError, match=message):
        screen(crafted[name])
    with pytest.raises(ValueError, match=message):  # the readers screen first, so Pillow never opens it
        read_image(crafted[name], max_pixels=50_000_000)


def test_ordinary_photos_and_label_maps_pass(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for name, options in [("p.jpg", {"progressive": True}), ("b.jpg", {}), ("a.png", {}), ("a.webp", {}),
                          ("a.gif", {}), ("a.bmp", {})]:
        Image.fromarray(pixels).save(tmp_path / name, **options)
        assert read_image(tmp_path / name).shape == (48, 64, 3), name
    frames = [Image.fromarray(np.roll(pixels, k, axis=1)) for k in range(4)]  # an animation that loops, with a note
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=80, loop=0,
                   comment=b"made with a camera app " * 40)
    assert read_image(tmp_path / "anim.gif").shape == (48, 64, 3)
    Image.fromarray(pixels[..., 0]).save(tmp_path / "labels.bmp")
    assert read_raw(tmp_path / "labels.bmp", lossless=True).shape == (48, 64)
    with pytest.raises(ValueError, match="save the label map as PNG"):
        read_raw(tmp_path / "b.jpg", lossless=True)


@pytest.fixture(scope="module")
def slow_jpeg(tmp_path_factory):
    """A file that passes every structural cap and still takes seconds: 49 MP, 64 scans."""
    path = tmp_path_factory.mktemp("slow") / "slow.jpg"
    path.write_bytes(progressive((7000, 7000), MAX_JPEG_SCANS))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_decoding_is_ended_at_the_deadline_and_its_process_replaced(slow_jpeg, tmp_path):
    decoder = Decoder(workers=1)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded), deadline(0.5, "decoding"):
            decoder.photo(slow_jpeg, max_side=1024, max_pixels=50_000_000)
        stopped = time.monotonic() - started
        assert decoder.killed == 1 and not decoder._idle  # the child was ended, not kept
        Image.new("RGB", (80, 60), (1, 2, 3)).save(tmp_path / "small.png")
        photo = decoder.photo(tmp_path / "small.png", max_side=1024, max_pixels=None)  # a fresh child answers
        assert photo.size == (60, 80) and (photo.pixels[0, 0] == (1, 2, 3)).all()
        [child] = decoder._idle
        flag = threading.Event()
        threading.Timer(0.3, flag.set).start()
        with pytest.raises(Stopped), deadline(None, "decoding", stop=flag.is_set):  # its client left
            decoder.photo(slow_jpeg, max_side=1024, max_pixels=50_000_000)
        assert decoder.killed == 2 and not alive(child.process.pid)
        whole = decoder.photo(slow_jpeg, max_side=1024, max_pixels=50_000_000)  # given its time, it decodes
        assert whole.size == (7000, 7000) and whole.pixels.shape == (1024, 1024, 3)
    finally:
        decoder.close()
    print(f"a 49 MP, 64-scan JPEG stopped {stopped:.2f} s after a 0.5 s deadline began")


@pytest.mark.slow
def test_a_file_needing_more_memory_than_a_child_may_take_is_refused(slow_jpeg):
    decoder = Decoder(workers=1, memory_bytes=400 << 20)
    try:
        with pytest.raises(ValueError, match="needs more memory to decode than this server gives one file"):
            decoder.photo(slow_jpeg, max_side=1024, max_pixels=50_000_000)
    finally:
        decoder.close()


@pytest.mark.slow
def test_crafted_files_are_refused_while_another_client_is_served(server, crafted, sample):
    """The crafted files sent at once to /segment (the scans twice: two took both workers before), and
    a normal /segment from another client meanwhile: every crafted request ends in a message, and the
    other client is answered. Before the screen, one scans.jpg held a worker for minutes. (All from
    one loopback address: eight uploads at once, within its eight.) Then the ICO as the page's photo."""
    import forge
    import httpx
    from gradio_client import Client, handle_file

    answers, errors = {}, {}

    def attack(name: str, copy: int):
        try:
            Client(server, verbose=False).predict(handle_file(str(crafted[name])), "fcn8s", api_name="/segment")
        except Exception as error:  # noqa: BLE001 -- the refusal is what this test reads
            errors[name, copy] = str(error)

    sent = [(name, copy) for name in crafted for copy in range(2 if name == "scans.jpg" else 1)]
    threads = [threading.Thread(target=attack, args=case) for case in sent]
    [t.start() for t in threads]
    honest = Client(server, verbose=False)
    started = time.monotonic()
    labels, info = honest.predict(handle_file(str(sample[0])), "fcn8s", api_name="/segment")
    answers["honest"] = time.monotonic() - started
    [t.join(120) for t in threads]
    assert info["height"] == 360 and not any(t.is_alive() for t in threads)
    assert sorted(errors) == sorted(sent)
    assert all("not a readable image" in message for message in errors.values()), [m for m in errors.values()
                                                                                   if "not a readable" not in m]
    # the page's photo: Gradio's own preprocessing would open (for an ICO, decode) it; the guard screens it first
    uploaded = httpx.post(server + "gradio_api/upload", files={"files": open(crafted["icon.ico"], "rb")},
                          timeout=30).json()[0]
    opened = next(e for e in forge.events(server) if e["api_name"] == "open")  # SamTab.open
    data = [{"path": uploaded, "orig_name": "icon.ico", **forge.MARKER}] + [forge.plain_value(c)
                                                                              for c in opened["inputs"][1:]]
    answer = forge.call(server, opened["fn_index"], data, timeout=60)
    assert answer["success"] is False and "not a readable image" in answer["text"], answer["text"][-400:]
    print(f"the honest client was answered in {answers['honest']:.1f} s")


def leave_after(server: str, seconds: float, *, route: str, image: dict) -> None:
    """Start /sam_everything (grid 16, the heaviest cap) by `route` ("call": a script's /call, "queue":
    the page's join and message stream), read its messages for `seconds`, and hang up."""
    import uuid

    import forge
    import httpx

    data = [image, 16]
    if route == "call":
        event = httpx.post(server + "gradio_api/call/sam_everything", json={"data": data}, timeout=30).json()
        url, params = server + f"gradio_api/call/sam_everything/{event['event_id']}", {}
    else:
        fn_index = next(e["fn_index"] for e in forge.events(server) if e["api_name"] == "sam_everything")
        session = uuid.uuid4().hex
        joined = httpx.post(server + "gradio_api/queue/join", timeout=30,
                            json={"data": data, "fn_index": fn_index, "session_hash": session})
        assert joined.status_code == 200, joined.text
        url, params = server + "gradio_api/queue/data", {"session_hash": session}
    ends = time.monotonic() + seconds
    with httpx.stream("GET", url, params=params, timeout=httpx.Timeout(30, read=seconds)) as stream:
        try:
            for line in stream.iter_lines():
                assert "process_completed" not in line, "the job ended before its client left: make it longer"
                if time.monotonic() > ends:
                    break
        except httpx.ReadTimeout:  # the job is running and sends nothing until it ends
            pass


@pytest.mark.slow
@pytest.mark.parametrize("route", ["call", "queue"])
def test_a_job_whose_client_left_stops(server, sample, caplog, route):
    """The client hangs up 2 s into a job of several seconds: the job stops at its next check, and
    says so in the log, instead of running to its end for nobody."""
    import logging

    from conftest import upload

    caplog.set_level(logging.INFO, logger="seg.app")
    image = upload(sample[0])
    started = time.monotonic()
    leave_after(server, 2, route=route, image=image)
    while time.monotonic() - started < 60 and "stopped: its client has gone" not in caplog.text:
        time.sleep(0.1)
    assert "Api.sam_everything stopped: its client has gone" in caplog.text, caplog.text[-2000:]
    print(f"{route}: stopped {time.monotonic() - started:.1f} s after it was sent")


@pytest.mark.slow
def test_a_sigterm_during_a_job_stops_it_and_the_process_exits_cleanly(vit_t_checkpoint, sample, tmp_path):
    """A Space stops the app with SIGTERM, often mid-job: the job stops at its next layer, the process
    exits 0 (a thread left inside torch or ONNX Runtime ended it with "terminate called without an
    active exception"), and the upload is not left on disk."""
    import signal
    import subprocess
    import sys

    import httpx

    from conftest import ROOT, free_port, wait_for_page

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEG_")}, "GRADIO_SERVER_PORT": str(port),
           "SEG_SAM_CHECKPOINT": str(vit_t_checkpoint), "SEG_SAM_VARIANT": "vit_t", "SEG_PRETRAINED_MODELS": "",
           "SEG_CACHE_DIR": str(tmp_path / "cache"), "SEG_BROWSER_DECODER": "0"}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, server)
        uploaded = httpx.post(url + "gradio_api/upload", files={"files": open(sample[0], "rb")}, timeout=30).json()[0]
        photo = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
        httpx.post(url + "gradio_api/call/sam_everything", json={"data": [photo, 16]}, timeout=30).raise_for_status()
        time.sleep(4)  # the job is running (the warm-up may still hold SAM's lock: it waits, then runs)
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=90)
    finally:
        server.kill()
    assert server.returncode == 0 and "terminate called" not in log, log[-2000:]
    assert "Api.sam_everything stopped: the server is stopping" in log, log[-2000:]
    assert not os.path.exists(uploaded)


def test_decoding_works_when_the_server_holds_many_descriptors(tmp_path):
    """A busy server holds over a thousand sockets, so a new child's pipe gets a descriptor past 1024,
    which select() refuses: the decoder waits with poll()."""
    Image.new("RGB", (80, 60), (9, 8, 7)).save(tmp_path / "small.png")
    pipes = [os.pipe() for _ in range(600)]  # 1,200 descriptors
    decoder = Decoder(workers=1)
    try:
        photo = decoder.photo(tmp_path / "small.png", max_side=1024, max_pixels=None)
        assert max(decoder._idle[0].process.stdout.fileno(), 0) > 1024 and photo.size == (60, 80)
    finally:
        decoder.close()
        for r, w in pipes:
            os.close(r), os.close(w)
