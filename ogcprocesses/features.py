"""OGC API - Features views (collections, items) and the OGC side of uploads and ingest.

Same surface as the processes (mounted at /ogcapi/): same authentication, negotiation and
exception documents. JSON only (``f=html`` answers 400); items are ``application/geo+json``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.exceptions import MissingParameter, PayloadTooLarge
from controlplane.selectors import (
    layer_feature,
    layer_for_principal,
    layer_items,
    layers_for_principal,
    upload_get,
)
from controlplane.services.layers import layer_ingest_upload
from controlplane.services.uploads import upload_create, upload_delete
from honua.requestbody import request_body_bound
from ogcprocesses import translate_features as tf
from ogcprocesses.parsers import request_body
from ogcprocesses.renderers import GeoJSONRenderer, OgcJSONRenderer
from ogcprocesses.views import OgcView

# Multipart framing and a few form fields around an uploaded file.
MULTIPART_OVERHEAD = 64 * 1024


class FeaturesView(OgcView):
    """JSON documents only: ``f=html`` is refused with a 400 naming ``f=json``."""

    renderer_classes = [OgcJSONRenderer]
    page_title = "OGC API - Features"


class CollectionListView(FeaturesView):
    """GET: the tenant's layers as collections. POST: ingest an uploaded file as a new one."""

    def get(self, request: Request) -> HttpResponseBase:
        return Response(tf.collections(layers_for_principal(principal=self.principal), self.urls))

    def post(self, request: Request) -> HttpResponseBase:
        wanted = tf.ingest_request(request_body(request).document, self.urls)
        info = layer_ingest_upload(
            principal=self.principal,
            item_id=wanted.upload,
            collection_id=wanted.collection_id,
            title=wanted.title,
            description=wanted.description,
            storage=wanted.storage,
            srid=wanted.srid,
            sublayer=wanted.sublayer,
        )
        href = tf.collection_href(self.urls, info.id)
        return Response(tf.collection(info, self.urls), status=201, headers={"Location": href})


class CollectionView(FeaturesView):
    def get(self, request: Request, collection_id: str) -> HttpResponseBase:
        info = layer_for_principal(principal=self.principal, collection_id=collection_id)
        return Response(tf.collection(info, self.urls))


class ItemListView(FeaturesView):
    """A page of features (GeoJSON): bbox, limit/offset paging, and CQL2 filters."""

    renderer_classes = [GeoJSONRenderer]

    def get(self, request: Request, collection_id: str) -> HttpResponseBase:
        query = {k: v for k, v in request.query_params.items()}
        params = tf.items_query(query)
        stamp = tf.now_stamp()
        page = layer_items(
            principal=self.principal,
            collection_id=collection_id,
            bbox=params.bbox,
            bbox_srid=params.bbox_srid,
            limit=params.limit,
            offset=params.offset,
            filter=params.filter,
            filter_lang=params.filter_lang,
            out_srid=4326,
        )
        return Response(tf.items(page, self.urls, collection_id, query, params, stamp=stamp))


class ItemView(FeaturesView):
    renderer_classes = [GeoJSONRenderer]

    def get(self, request: Request, collection_id: str, feature_id: str) -> HttpResponseBase:
        doc = layer_feature(
            principal=self.principal, collection_id=collection_id, feature_id=feature_id, out_srid=4326
        )
        return Response(tf.feature(doc, self.urls, collection_id))


# --- uploads ---------------------------------------------------------------------------------


def upload_limit() -> int:
    return int(settings.HONUA.get("UPLOAD_MAX_BYTES", 100 * 1024 * 1024))


class RawBodyParser(BaseParser):
    """Any other body is the file itself (read up to the upload limit and one byte more)."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> bytes:
        limit = upload_limit()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"the upload exceeds {limit} bytes, the most accepted")
        return bytes(raw)


class UploadListView(FeaturesView):
    """POST: a file as the raw body (name by ``?filename=`` or Content-Disposition) or as the
    ``file`` field of a multipart form -> 201 and the uploaded item."""

    parser_classes = [MultiPartParser, RawBodyParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        request_body_bound(request._request, limit=upload_limit() + MULTIPART_OVERHEAD)
        super(OgcView, self).initial(request, *args, **kwargs)

    def post(self, request: Request) -> HttpResponseBase:
        data = request.data
        description = request.query_params.get("description", "")
        if isinstance(data, bytes | bytearray):
            if not data:
                raise MissingParameter("the upload is empty: send the file as the body")
            name = tf.upload_name(request.headers.get("Content-Disposition"), request.query_params.get("filename"))
            content = bytes(data)
        elif not request.content_type.startswith("multipart/"):
            raise MissingParameter("the upload is empty: send the file as the body (with ?filename=)")
        else:
            upload = request.FILES.get("file")
            if upload is None:
                raise MissingParameter(
                    "send the file as the body (with ?filename=) or as a multipart field named 'file'"
                )
            name = request.query_params.get("filename") or upload.name or "upload"
            description = description or str(data.get("description") or "")
            content = upload.read()
        item = upload_create(principal=self.principal, name=name, data=content, description=description)
        href = tf.upload_href(self.urls, str(item.id))
        return Response(tf.upload(item, self.urls), status=201, headers={"Location": href})


class UploadView(FeaturesView):
    def get(self, request: Request, upload_id: str) -> HttpResponseBase:
        return Response(tf.upload(upload_get(principal=self.principal, item_id=upload_id), self.urls))

    def delete(self, request: Request, upload_id: str) -> HttpResponseBase:
        upload_delete(principal=self.principal, item_id=upload_id)
        return HttpResponse(status=204)
