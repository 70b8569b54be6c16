"""W3C Trace Context: which traceparent values are carried on, and how a trace continues."""

from __future__ import annotations

import re

import pytest

from honua.tracecontext import TraceContext, traceparent_normalize

GOOD = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_valid_traceparent_is_parsed():
    ctx = TraceContext.parse(GOOD)
    assert ctx == TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01")
    assert ctx.header == GOOD
    assert traceparent_normalize(f"  {GOOD}\t") == GOOD


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "x" * 300,
        GOOD.upper(),  # the spec allows lowercase hex only
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero parent id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff is invalid
        GOOD + "-extra",  # version 00 has exactly four fields
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",  # short trace id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",  # short flags
        "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
        "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ],
)
def test_an_invalid_traceparent_is_ignored(header):
    assert TraceContext.parse(header) is None
    assert traceparent_normalize(header) is None


def test_a_later_version_keeps_its_first_four_fields():
    later = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds"
    assert traceparent_normalize(later) == GOOD
    assert traceparent_normalize("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == GOOD
    assert TraceContext.parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x") is None


def test_a_child_span_stays_in_the_trace_and_a_new_trace_is_valid():
    parent = TraceContext.parse(GOOD)
    child = parent.child()
    assert child.trace_id == parent.trace_id and child.flags == parent.flags
    assert child.span_id != parent.span_id and re.fullmatch(r"[0-9a-f]{16}", child.span_id)
    fresh = TraceContext.new()
    assert TraceContext.parse(fresh.header) == fresh
    assert fresh.trace_id != TraceContext.new().trace_id
