"""Image files judged by their structure before any pixel is decoded: only the formats we list, and
none whose layout makes a small file slow to open or decode.

Pillow parses a file's headers in Python, one marker or chunk per loop, and decodes in C code that
nothing can interrupt. A small crafted file exploits both: a 3.6 MB progressive JPEG whose last
scan is repeated 100,000 times decodes each repeat over the whole image (minutes); an ICO entry that
claims 256x256 holds a 13000x13000 PNG that Pillow decodes on open; millions of tiny PNG chunks,
garbage bytes between JPEG markers, or empty GIF comment blocks each cost a Python loop. `screen`
reads the bytes once (a read and a count, no decoding), counts what the decoder will loop over, and
refuses past the caps with a message, before Pillow sees the file.

    kind = screen(path, formats=PHOTO_FORMATS)     # "JPEG", "PNG", ...; or ValueError saying why not
    with Image.open(path, formats=PILLOW_FORMATS[kind]) as image: ...
"""

import os
import struct
from pathlib import Path

PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # what a camera, a phone or a browser saves
LABEL_FORMATS = ("PNG", "BMP")  # lossless: label ids survive exactly
# Pillow's names for what `screen` answers: a phone's JPEG with a depth map or second view is an MPO
PILLOW_FORMATS = {"JPEG": ("JPEG", "MPO"), "PNG": ("PNG",), "WEBP": ("WEBP",), "GIF": ("GIF",), "BMP": ("BMP",)}

# A progressive JPEG from libjpeg or mozjpeg has about 10 scans and a baseline one 1 to 3; an EXIF
# thumbnail or an MPO's second image adds a few. 64 is far above any camera's and keeps the worst
# case (every scan over a 50 MP image) to seconds.
MAX_JPEG_SCANS = 64
# Markers and stray bytes before the first scan, which Pillow walks one by one in Python: a photo has
# under 30 (APPn, DQT, SOF, DHT); ICC profiles and previews split into chunks add tens.
MAX_JPEG_HEADER_STEPS = 2048
# PNG chunks: libpng writes 8 KiB of pixels per IDAT and Pillow 64 KiB, so 50,000 chunks is 400 MB
# of image data at libpng's size, twenty times the upload cap.
MAX_PNG_CHUNKS = 50_000

# GIF blocks and sub-blocks before the first image, and stray bytes there, which Pillow walks one by
# one in Python when it opens the file (a few megabytes of empty comment blocks hold a worker for many
# seconds, and the time grows with the file). A camera's or an editor's GIF has a handful (loop count, frame delay,
# comment);
# an XMP packet, read as sub-blocks, a few hundred.
MAX_GIF_HEADER_STEPS = 10_000

_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"BM", "BMP"))


def kind_of(head: bytes) -> str | None:
    """The format a file's first bytes announce (one of PILLOW_FORMATS' keys), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def screen(path: str | os.PathLike, *, formats: tuple[str, ...] = PHOTO_FORMATS) -> str:
    """The format of the file at `path` if it is one of `formats` and its structure is within the
    caps above; else ValueError naming the file, what is wrong and what to send instead."""
    name = Path(path).name
    data = Path(path).read_bytes()
    kind = kind_of(data[:16])
    if kind not in formats:
        what = f" (a {kind} file)" if kind else ""
        raise ValueError(f"{name} is not a readable image{what}: send {', '.join(formats[:-1])} or {formats[-1]}")
    problem = {"JPEG": _jpeg, "PNG": _png, "GIF": _gif, "BMP": _bmp}.get(kind, lambda _: None)(data)
    if problem:
        raise ValueError(f"{name} is not a readable image ({problem}): save it again with an ordinary "
                         "image editor or camera app and upload that")
    return kind


def _jpeg(data: bytes) -> str | None:
    # Every scan starts with the bytes FF DA, and the entropy-coded data between markers never holds
    # them (an FF there is followed by 00), so counting them bounds the scans the decoder will run.
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        return f"its {scans:,} scans are more than the {MAX_JPEG_SCANS} any camera writes"
    pos, steps = 2, 0  # after SOI; walk the segments up to the first scan, as Pillow's parser does
    while pos < len(data) - 1:
        steps += 1
        if steps > MAX_JPEG_HEADER_STEPS:
            return f"more than {MAX_JPEG_HEADER_STEPS} markers or stray bytes before its image data"
        if data[pos] != 0xFF:  # a stray byte: Pillow skips it, one loop each
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # the first scan (the decoder takes over), or the end
            return None
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):  # markers without a length
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return "it ends before its image data"


def _png(data: bytes) -> str | None:
    pos, chunks = 8, 0
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            return f"more than {MAX_PNG_CHUNKS:,} chunks"
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND":
            return None
        pos += 12 + length
    return None  # a truncated file: Pillow says so itself, quickly


def _gif(data: bytes) -> str | None:
    if len(data) < 13:
        return None  # too short to hold a screen descriptor: Pillow says so itself, quickly
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    in_extension = False  # inside an extension's sub-blocks, which end at an empty one
    for _ in range(MAX_GIF_HEADER_STEPS):
        if pos >= len(data):
            return None  # a truncated file: Pillow says so itself, quickly
        if in_extension:  # a sub-block: its size, then its bytes
            in_extension, pos = data[pos] != 0, pos + 1 + data[pos]
        elif data[pos] in (0x2C, 0x3B):  # the first image (the decoder takes over), or the end
            return None
        elif data[pos] == 0x21:  # an extension's introducer and label, then its sub-blocks
            in_extension, pos = True, pos + 2
        else:  # a stray byte: Pillow skips it, one loop each
            pos += 1
    return f"more than {MAX_GIF_HEADER_STEPS:,} blocks or stray bytes before its first image"


def _bmp(data: bytes) -> str | None:
    # Pillow decodes run-length BMPs (compression 1, 2) in Python, one loop per run: minutes for a
    # crafted 20 MB file. Cameras and editors save uncompressed (0) or bit-field (3) BMPs.
    if len(data) >= 34 and struct.unpack_from("<I", data, 14)[0] >= 40:
        compression = struct.unpack_from("<I", data, 30)[0]
        if compression not in (0, 3, 6):
            return "its pixels are run-length coded or embedded, which this server does not decode"
    return None
