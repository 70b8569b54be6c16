"""Where a batch job's files live between Honua and the task: a small put/get/url/delete
interface addressed by keys ``<run id>/<name>``, with a local (``file://``) implementation.

The AWS runner implements the same interface on S3 (``s3://<bucket>/jobs/<run id>/...``);
``staging_for_uri`` is how the task side (the entry point, no Django) opens a URI it got.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse


class Staging:
    """Keys are ``<run id>/<relative path>``; values are bytes; ``url`` is what a task gets."""

    def put(self, key: str, data: bytes) -> str:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def url(self, key: str) -> str:
        raise NotImplementedError

    def delete(self, prefix: str) -> None:
        """Remove every object under ``prefix`` (a run's whole staging area)."""
        raise NotImplementedError


def _safe_key(key: str) -> str:
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"invalid staging key {key!r}")
    return "/".join(parts)


class LocalStaging(Staging):
    """Files under a root directory (HONUA_DATA_DIR/batch by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def put(self, key: str, data: bytes) -> str:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(key)

    def get(self, key: str) -> bytes:
        return read_regular_file(self.path(key))

    def url(self, key: str) -> str:
        return self.path(key).resolve().as_uri()

    def delete(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)


def read_regular_file(path: Path, max_bytes: int | None = None) -> bytes:
    """Read a regular file without following a symlink at its last component (a task must not
    make the server read other files through a link it planted in its output directory)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000) == 0o100000:
            raise OSError(f"{path.name} is not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise OSError(f"{path.name} is {st.st_size} bytes, more than {max_bytes}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def local_path(uri: str) -> Path:
    """The local path of a ``file://`` URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ValueError(f"not a local file URI: {uri!r}")
    return Path(unquote(parsed.path))


def uri_read(uri: str) -> bytes:
    """Read a staged object by URI (task side). Only ``file://`` here; the AWS runner adds s3."""
    if uri.startswith("file:"):
        return read_regular_file(local_path(uri))
    raise ValueError(f"unsupported staging URI scheme: {uri!r}")


def uri_write(uri: str, data: bytes) -> None:
    """Write a staged object by URI (task side)."""
    if uri.startswith("file:"):
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    raise ValueError(f"unsupported staging URI scheme: {uri!r}")


def uri_join(prefix: str, name: str) -> str:
    return prefix.rstrip("/") + "/" + name
