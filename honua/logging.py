"""Structured JSON log lines carrying the run id when there is one."""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime

import orjson

current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("honua_run_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run_id and extras."""

    _skip = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None) or current_run_id.get()
        if run_id:
            doc["run_id"] = str(run_id)
        for key, value in record.__dict__.items():
            if key not in self._skip and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()
