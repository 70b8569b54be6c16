"""Bounds of untrusted JSON text, checked before it is parsed.

A client's JSON (an OGC execute body, a GPServer body or form field, an uploaded GeoJSON
file) may nest deeply or hold millions of tiny values. Deep nesting makes recursive code
downstream (validation, the ledger's JSON encoder) overflow the stack, and tiny values cost
tens of times their size once decoded. So before ``orjson`` builds anything, one linear scan
measures the nesting depth and counts the values, in C speed: the text is read as a byte
array in blocks (numpy), quotes preceded by an odd run of backslashes are escaped, brackets
and commas inside strings are not structure. Memory stays bounded by the block size and the
work is linear whatever the input, malformed or not (a malformed text is refused either here
or by the parser; both are 400).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from django.conf import settings

from controlplane.exceptions import InvalidRequest, JSONTooDeep, JSONTooLarge

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ITEMS = 10_000_000
_BLOCK = 1 << 20
# What each byte is to the scan (0: anything else).
_QUOTE, _BACKSLASH, _COMMA, _OPEN, _CLOSE = 1, 2, 3, 4, 5


def json_limits() -> tuple[int, int]:
    """The configured (max depth, max values) of client JSON."""
    honua = settings.HONUA
    return (
        int(honua.get("JSON_MAX_DEPTH") or DEFAULT_MAX_DEPTH),
        int(honua.get("JSON_MAX_ITEMS") or DEFAULT_MAX_ITEMS),
    )


def _kinds() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint8)
    for byte, kind in ((ord('"'), _QUOTE), (ord("\\"), _BACKSLASH), (ord(","), _COMMA),
                       (ord("["), _OPEN), (ord("{"), _OPEN), (ord("]"), _CLOSE), (ord("}"), _CLOSE)):
        table[byte] = kind
    return table


_KIND = _kinds()


def _escaped(kinds: np.ndarray, carry: int) -> tuple[np.ndarray, int]:
    """Which quotes of a block are real (not escaped), and the run of backslashes ending it."""
    n = len(kinds)
    is_bs = kinds == _BACKSLASH
    index = np.arange(n, dtype=np.int64)
    # Where the last non-backslash at or before each position is (a run crossing the block
    # start continues the previous block's run of ``carry``).
    last_plain = np.maximum.accumulate(np.where(is_bs, np.int64(-1 - carry), index))
    run_before = np.empty(n, dtype=np.int64)
    run_before[0] = carry
    run_before[1:] = index[:-1] - last_plain[:-1]
    real = (kinds == _QUOTE) & (run_before % 2 == 0)
    return real, (n - 1 - int(last_plain[-1])) if is_bs[-1] else 0


def json_measure(data: bytes | str) -> tuple[int, int]:
    """(nesting depth, values) of JSON text without parsing it; values counts containers and
    separators, so it is exact for arrays and objects up to one per non-empty container."""
    raw = data.encode() if isinstance(data, str) else data
    buf = np.frombuffer(raw, dtype=np.uint8)
    depth = deepest = items = quotes = carry = 0
    for start in range(0, len(buf), _BLOCK):
        kinds = _KIND[buf[start : start + _BLOCK]]
        if carry or np.any(kinds == _BACKSLASH):
            real, carry = _escaped(kinds, carry)
            kinds = np.where((kinds == _QUOTE) & ~real, np.uint8(0), kinds)
        # Only the structural bytes from here on: quotes, brackets, commas.
        kinds = kinds[np.flatnonzero((kinds != 0) & (kinds != _BACKSLASH))]
        is_quote = kinds == _QUOTE
        inside = (np.cumsum(is_quote, dtype=np.int64) + quotes) % 2 == 1
        outside = ~(inside | is_quote)
        opens = outside & (kinds == _OPEN)
        closes = outside & (kinds == _CLOSE)
        items += int(np.count_nonzero(outside & (kinds == _COMMA))) + int(np.count_nonzero(opens))
        moves = opens[opens | closes].astype(np.int8) * 2 - 1
        if len(moves):
            levels = np.cumsum(moves, dtype=np.int64) + depth
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
        quotes += int(np.count_nonzero(is_quote))
    return deepest, items


def json_bounds_check(
    data: bytes | str, *, where: str = "the request body", max_depth: int | None = None,
    max_items: int | None = None,
) -> None:
    """Raise JSONTooDeep (400) or JSONTooLarge (413) when JSON text nests deeper or holds
    more values than allowed (defaults: settings)."""
    depth_limit, items_limit = json_limits()
    depth_limit = max_depth or depth_limit
    items_limit = max_items or items_limit
    if len(data) <= depth_limit and len(data) <= items_limit:
        return  # too short to exceed either limit
    depth, items = json_measure(data)
    if depth > depth_limit:
        raise JSONTooDeep(f"{where}: JSON nested {depth} levels deep; at most {depth_limit} are accepted")
    if items > items_limit:
        raise JSONTooLarge(f"{where}: JSON of about {items} values; at most {items_limit} are accepted")


def json_loads_bounded(
    data: bytes | str, *, where: str = "the request body", error: type[InvalidRequest] = InvalidRequest
) -> Any:
    """Bounds-checked ``orjson.loads``; malformed JSON raises ``error`` (400)."""
    json_bounds_check(data, where=where)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON: {exc}") from None
