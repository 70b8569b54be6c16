"""W3C Trace Context (``traceparent``): parse, start and continue a trace.

https://www.w3.org/TR/trace-context/ . Honua exports no spans; it carries the trace id from
the client's request through the ledger into the worker (and on to batch tasks) so that log
lines of one request, wherever they are written, share a trace id.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# A later version may append fields after the flags; its first four fields keep this form.
_ANY_VERSION = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SAMPLED = "01"


@dataclass(frozen=True)
class TraceContext:
    """One position in a trace: the trace id, the id of the current span and the flags."""

    trace_id: str
    span_id: str
    flags: str = SAMPLED

    @property
    def header(self) -> str:
        """This context as a version-00 ``traceparent`` value."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, its parent being this one."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)

    @classmethod
    def new(cls) -> TraceContext:
        """The root of a new trace (sampled: Honua records every run's log lines)."""
        return cls(secrets.token_hex(16), secrets.token_hex(8), SAMPLED)

    @classmethod
    def parse(cls, header: str | None) -> TraceContext | None:
        """A ``traceparent`` header value, or None when it is absent or invalid (the spec
        says to ignore an invalid one: uppercase hex, all-zero ids, version ff, bad length)."""
        value = (header or "").strip(" \t")
        if len(value) < 55:
            return None
        match = _VERSION_00.fullmatch(value)
        if match is None:
            later = _ANY_VERSION.fullmatch(value)
            if later is None or later.group(1) in ("00", "ff"):
                return None
            match = later
            trace_id, span_id, flags = later.group(2), later.group(3), later.group(4)
        else:
            trace_id, span_id, flags = match.group(1), match.group(2), match.group(3)
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        return cls(trace_id, span_id, flags)


def traceparent_normalize(header: str | None) -> str | None:
    """A valid ``traceparent`` as the version-00 value to carry on; None if invalid."""
    ctx = TraceContext.parse(header)
    return ctx.header if ctx else None
