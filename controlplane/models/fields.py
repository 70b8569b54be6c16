"""A JSONField that encodes and decodes with orjson (large geometry payloads on hot paths)."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import models
from psycopg.types.json import Jsonb


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


class FastJSONField(models.JSONField):
    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if hasattr(value, "as_sql"):  # expressions pass through
            return value
        return Jsonb(value, dumps=_dumps)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or not isinstance(value, str | bytes):
            return value
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            # django-stubs types ``value`` as ``str | None``, but JSONField.from_db_value hands it
            # to json.loads, which accepts bytes as well: a stub gap.
            return super().from_db_value(value, expression, connection)  # type: ignore[arg-type]
