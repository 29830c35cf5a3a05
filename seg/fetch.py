"""Downloading a file once: streamed, checked against published digests, kept in a cache.

A cached file carries a `<name>.sha256` sidecar written when it was downloaded and verified;
every later use re-checks it, so a truncated or altered cache file is caught, not loaded.
"""

import hashlib
import os
import urllib.request
from pathlib import Path

from tqdm import tqdm

DEFAULT_CACHE = Path("~/.cache/seg")  # the command lines and the app pass $SEG_CACHE_DIR instead when it is set


def hub_download_command(repo: str, *filenames: str) -> str:
    """The command that fills the Hugging Face cache with `repo` (or only `filenames` of it) on a
    connected machine; the cache is what loading offline reads. `hf` is the command huggingface_hub
    1.x installs (its older `huggingface-cli` is gone)."""
    return " ".join(["hf download", repo, *filenames])


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, destination: str | os.PathLike, *, digests: dict[str, str] | None = None,
                  progress: bool = True) -> Path:
    """Stream `url` to `destination` (under a temporary name, renamed once complete and verified).

    digests: expected hex digests by algorithm, e.g. {"sha256": ...} or {"md5": ...}. Any mismatch
    deletes the download and raises ValueError, so a corrupt or tampered file is never used.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {destination.name}",
                      disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        for algorithm, expected in (digests or {}).items():
            actual = file_digest(partial, algorithm)
            if actual != expected.lower():
                raise ValueError(f"{url}: {algorithm} is {actual}, expected {expected}: the download is corrupt "
                                 "or the file changed upstream; nothing was kept")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    return destination


def cached_download(url: str, filename: str, *, cache_dir: str | os.PathLike = DEFAULT_CACHE,
                    digests: dict[str, str] | None = None, download: bool = True, progress: bool = True) -> Path:
    """The cached copy of `url` (in `cache_dir`), downloading and verifying it the first time.

    Raises FileNotFoundError when it is not cached and `download` is False, and ValueError when
    the cached file no longer matches the sha256 recorded when it was verified.
    """
    path = Path(cache_dir).expanduser() / filename
    sidecar = path.with_name(path.name + ".sha256")
    if path.is_file() and sidecar.is_file():
        recorded = sidecar.read_text().strip()
        if file_digest(path) != recorded:
            raise ValueError(f"{path} no longer matches the sha256 recorded when it was downloaded ({recorded}): "
                             "delete it to download it again")
        return path
    if not download:
        raise FileNotFoundError(f"{filename} is not in the cache {path.parent}")
    download_file(url, path, digests=digests, progress=progress)
    sidecar.write_text(file_digest(path) + "\n")
    return path


def verify(path: str | os.PathLike, sha256: str, *, source: str) -> Path:
    """`path` when its sha256 is `sha256`; ValueError (so nothing is loaded) when it is not."""
    actual = file_digest(path)
    if actual != sha256.lower():
        raise ValueError(f"{path} has sha256 {actual}, but {source} is recorded as {sha256}: the file is corrupt "
                         "or not the one expected; delete it to download it again")
    return Path(path)
