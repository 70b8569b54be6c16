"""Media types of uploaded bytes, told by their content (magic numbers), never by the name."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import orjson

OCTETS = "application/octet-stream"

# Binary signatures: (offset, bytes, media type), most specific first.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"II+\x00", "image/tiff"),  # BigTIFF
    (0, b"MM\x00+", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"LASF", "application/vnd.las"),
    (0, b"\x00\x00\x27\x0a", "application/vnd.shp"),  # shapefile main file (file code 9994)
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"\xca\xfe\xba\xbe", "application/x-mach-binary"),
    (0, b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (8, b"WEBP", "image/webp"),
)
_SQLITE = b"SQLite format 3\x00"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_GEOJSON_TYPES = {
    "FeatureCollection", "Feature", "Point", "MultiPoint", "LineString", "MultiLineString",
    "Polygon", "MultiPolygon", "GeometryCollection",
}
_TEXT_PROBE = 64 * 1024
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f]")


def _zip_type(data: bytes) -> str:
    """A zip archive, or what the archive holds when that has its own type."""
    try:
        names = [n.lower() for n in zipfile.ZipFile(io.BytesIO(data)).namelist()]
    except (zipfile.BadZipFile, ValueError, OSError):
        return "application/zip"
    if any(n.endswith(".kml") for n in names) and not any(n.endswith(".shp") for n in names):
        return "application/vnd.google-earth.kmz"
    return "application/zip"


def _sqlite_type(data: bytes) -> str:
    # A GeoPackage is SQLite with application_id 'GPKG' at offset 68.
    return "application/geopackage+sqlite3" if data[68:72] == b"GPKG" else "application/vnd.sqlite3"


def _json_type(data: bytes) -> str | None:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.get("type") in _GEOJSON_TYPES:
        return "application/geo+json"
    return "application/json"


def _xml_type(head: str) -> str:
    low = head.lower()
    if re.search(r"<!doctype\s+html|<html[\s>]", low):
        return "text/html"
    if "<kml" in low:
        return "application/vnd.google-earth.kml+xml"
    if "<gpx" in low:
        return "application/gpx+xml"
    if "<svg" in low:
        return "image/svg+xml"
    return "application/xml"


def _is_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) < 2:
        return False
    if len(lines) == 20 or len(text) >= _TEXT_PROBE:
        lines = lines[:-1]  # the probe may have cut the last line
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    widths = {len(row) for row in csv.reader(lines, dialect)}
    return len(widths) == 1 and widths.pop() > 1


def _is_pe(data: bytes) -> bool:
    """A Windows executable: ``MZ``, then the offset of a ``PE\\0\\0`` header at 0x3c."""
    if not data.startswith(b"MZ") or len(data) < 64:
        return False
    offset = int.from_bytes(data[0x3C:0x40], "little")
    return data[offset : offset + 4] == b"PE\x00\x00"


def media_type_sniff(data: bytes) -> str:
    """The media type of ``data`` from its first bytes (and, for text, its structure)."""
    if _is_pe(data):
        return "application/x-msdownload"
    if data.startswith(_ZIP):
        return _zip_type(data)
    if data.startswith(_SQLITE):
        return _sqlite_type(data)
    for offset, magic, media in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (offset == 0 or data.startswith(b"RIFF")):
            return media
    head = data[:_TEXT_PROBE]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head or _CONTROL.search(head):
        return OCTETS
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut by the probe
            return OCTETS
        text = head[: exc.start].decode("utf-8")
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        found = _json_type(data.removeprefix(b"\xef\xbb\xbf"))
        if found:
            return found
    if stripped.startswith("<"):
        return _xml_type(stripped[:4096])
    if _is_csv(text):
        return "text/csv"
    return "text/plain"


# What each accepted type is called by file extension (Esri's allowedUploadFileTypes).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "application/zip": ("zip",),
    "application/vnd.google-earth.kmz": ("kmz",),
    "application/vnd.google-earth.kml+xml": ("kml",),
    "application/gpx+xml": ("gpx",),
    "application/geo+json": ("geojson", "json"),
    "application/json": ("json",),
    "application/xml": ("xml",),
    "text/csv": ("csv",),
    "text/plain": ("txt", "prj", "wkt"),
    "application/geopackage+sqlite3": ("gpkg",),
    "application/vnd.sqlite3": ("sqlite",),
    "image/tiff": ("tif", "tiff"),
    "image/png": ("png",),
    "image/jpeg": ("jpg", "jpeg"),
    "image/gif": ("gif",),
    "application/pdf": ("pdf",),
    "application/gzip": ("gz",),
    "application/x-7z-compressed": ("7z",),
    "application/vnd.las": ("las",),
    "application/vnd.shp": ("shp",),
}
# Never accepted, whatever the settings say: things a browser or a shell would run.
REFUSED = frozenset(
    {"text/html", "image/svg+xml", "application/x-executable", "application/x-msdownload",
     "application/x-mach-binary"}
)
