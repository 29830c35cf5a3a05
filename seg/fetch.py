"""Downloading a file once, streamed, with an optional sha256 check."""

import hashlib
import os
import urllib.request
from pathlib import Path

from tqdm import tqdm


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, destination: str | os.PathLike, *, sha256: str | None = None,
                  progress: bool = True) -> Path:
    """Stream `url` to `destination` (written under a temporary name, renamed when complete).

    With `sha256`, a mismatch deletes the file and raises ValueError, so a corrupt or tampered
    download is never used.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {destination.name}",
                  disable=not progress) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                bar.update(len(block))
    if sha256 is not None:
        actual = sha256_of(partial)
        if actual != sha256.lower():
            partial.unlink()
            raise ValueError(f"{url}: sha256 is {actual}, expected {sha256}: the download is corrupt "
                             "or the file changed upstream; nothing was kept")
    partial.replace(destination)
    return destination
