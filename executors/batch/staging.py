"""Where a batch job's files live between Honua and the task: a small put/get/url/delete
interface addressed by keys ``<run id>/<name>``, with a local (``file://``) implementation.

The AWS runner implements the same interface on S3 (``s3://<bucket>/jobs/<run id>/...``);
``staging_for_uri`` is how the task side (the entry point, no Django) opens a URI it got.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
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


class S3Staging(Staging):
    """Objects under ``s3://<bucket>/<prefix><key>`` (the AWS runner: prefix ``jobs/``). The
    boto3 client is given (the server's comes from its one client factory, the task's from
    ``executors.batch.s3io``): this module imports no SDK."""

    def __init__(self, client: Any, bucket: str, prefix: str = "jobs/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def object_key(self, key: str) -> str:
        return self.prefix + _safe_key(key)

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data, ServerSideEncryption="AES256"
        )
        return self.url(key)

    def get(self, key: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def delete(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix) + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})


def s3_split(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI."""
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise ValueError(f"not an S3 object URI: {uri!r}")
    return parsed.netloc, key


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
    """Read a staged object by URI (task side): ``file://``, or ``s3://`` (AWS Batch)."""
    if uri.startswith("file:"):
        return read_regular_file(local_path(uri))
    if uri.startswith("s3:"):
        from executors.batch.s3io import s3_read

        return s3_read(*s3_split(uri))
    raise ValueError(f"unsupported staging URI scheme: {uri!r}")


def uri_write(uri: str, data: bytes) -> None:
    """Write a staged object by URI (task side)."""
    if uri.startswith("file:"):
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if uri.startswith("s3:"):
        from executors.batch.s3io import s3_write

        s3_write(*s3_split(uri), data)
        return
    raise ValueError(f"unsupported staging URI scheme: {uri!r}")


def uri_join(prefix: str, name: str) -> str:
    return prefix.rstrip("/") + "/" + name
