"""Request bodies bounded before they are read (each API surface sets its own limit).

A body announced by ``Content-Length`` is refused when larger than the limit, without reading
a byte. A chunked body (no ``Content-Length``) is read up to the limit and one byte more, and
refused past it; below it, it is kept and announced with its real length, so the parsers read
it like any other. Django itself ignores a body without ``Content-Length`` under WSGI, which
would turn a chunked request into an empty one.
"""

from __future__ import annotations

import io
import tempfile
from typing import IO, BinaryIO, cast

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest

from controlplane.exceptions import InvalidRequest, LengthRequired, PayloadTooLarge

_READ = 64 * 1024


def _chunked_source(request: HttpRequest) -> IO[bytes] | None:
    """Where an unannounced body can be read from without blocking past its end: the WSGI
    server's input when it ends it (``wsgi.input_terminated``: gunicorn de-chunks), or the
    body an ASGI handler has already buffered; None when neither."""
    if isinstance(request, WSGIRequest):
        source = request.META.get("wsgi.input")
        return source if request.META.get("wsgi.input_terminated") else None
    stream = getattr(request, "_stream", None)
    return getattr(stream, "stream", stream)


def _body_drop(request: HttpRequest) -> None:
    """Nothing may read a refused body (an error page that looks for ``f`` in it included)."""
    request.META["CONTENT_LENGTH"] = "0"
    request._stream = io.BytesIO()


def request_body_bound(request: HttpRequest, *, limit: int) -> None:
    """Refuse a body over ``limit`` bytes (PayloadTooLarge, 413) before parsing it; a chunked
    body within it is kept for the parsers."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared not in (None, ""):
        try:
            size = int(str(declared))
        except ValueError:
            raise InvalidRequest(f"Content-Length {declared!r} is not a number") from None
        if size < 0:
            raise InvalidRequest(f"Content-Length {declared!r} is not a length")
        if size > limit:
            _body_drop(request)
            raise PayloadTooLarge(f"the request body is {size} bytes; at most {limit} are accepted here")
        return
    if "chunked" not in str(request.META.get("HTTP_TRANSFER_ENCODING", "")).lower():
        return  # no body
    source = _chunked_source(request)
    if source is None:
        _body_drop(request)
        raise LengthRequired("this server cannot read a chunked request body; send a Content-Length")
    spool = tempfile.SpooledTemporaryFile(max_size=int(settings.FILE_UPLOAD_MAX_MEMORY_SIZE))
    size = 0
    while True:
        chunk = source.read(min(_READ, limit + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            spool.close()
            _body_drop(request)
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes, the most accepted here")
        spool.write(chunk)
    spool.seek(0)
    request.META["CONTENT_LENGTH"] = str(size)
    request._stream = cast(BinaryIO, spool)
