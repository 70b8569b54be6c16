"""Catalog layers as executors see them: a JSON-safe source descriptor (a table in this
database or a file read through GDAL), its reader, and the filter language (filters)."""
