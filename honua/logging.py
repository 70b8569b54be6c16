"""Structured JSON log lines carrying the run id and the trace context when there is one."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson

from honua.tracecontext import TraceContext

current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("honua_run_id", default=None)
current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "honua_trace", default=None
)


@contextmanager
def log_context(*, run_id: str | None = None, trace: TraceContext | None = None) -> Iterator[None]:
    """Within the block, every log line of this thread (or task) carries the run and trace."""
    run_token = current_run_id.set(run_id) if run_id is not None else None
    trace_token = current_trace.set(trace) if trace is not None else None
    try:
        yield
    finally:
        if trace_token is not None:
            current_trace.reset(trace_token)
        if run_token is not None:
            current_run_id.reset(run_token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run_id, trace_id, span_id and extras."""

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
        trace = current_trace.get()
        if trace is not None:
            # An explicit extra (a line about another run's trace) wins over the context.
            doc["trace_id"] = getattr(record, "trace_id", None) or trace.trace_id
            doc["span_id"] = getattr(record, "span_id", None) or trace.span_id
        for key, value in record.__dict__.items():
            if key not in self._skip and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()
