"""The filter language of layer references: CQL2 text (OGC) and Esri where clauses (GPServer).

Both dialects parse to one CQL2-JSON document (OGC 21-065), which compiles to a SQL
``WHERE`` expression with bound parameters (``filter_sql``) or is evaluated in Python over
features read from files (``filter_match``, ``filter_mask``); the two agree on every row.

The subset
==========

``filter_parse(text, lang=...)``, ``lang`` is ``"cql2-text"`` or ``"sql-where"``.
Keywords are case-insensitive. Whitespace is ASCII (space, tab, CR, LF, FF, VT).

- **Properties**: bare identifiers ``[A-Za-z_][A-Za-z0-9_.]*`` (a dot is part of the name,
  not a path) that are not keywords (AND OR NOT LIKE IN BETWEEN IS NULL TRUE FALSE), or
  double-quoted names ``"any name"`` (``""`` is a quote inside).
- **Literals**: strings in single quotes (``''`` is a quote inside); numbers ``5``,
  ``-2.5``, ``.5``, ``1e3`` (integers stay integers, others are IEEE doubles, as in
  CQL2-JSON); ``TRUE``/``FALSE``; instants: CQL2 text ``TIMESTAMP('2024-01-01T00:00:00Z')``
  and ``DATE('2024-01-01')``, sql-where (Esri) ``timestamp '2024-01-01 00:00:00'`` and
  ``date '2024-01-01'``. An instant without an offset is UTC. ``NULL`` only in ``IS NULL``.
- **Predicates** (a property on one side, a literal on the other):
  ``= <> != < <= > >=``; ``p [NOT] LIKE 'pattern'`` (``%`` any run, ``_`` one character,
  ``\\`` escapes the next character; case-sensitive); ``p [NOT] IN (lit, ...)`` (1 to 1,000
  literals of one type); ``p [NOT] BETWEEN lit AND lit`` (inclusive);
  ``p IS [NOT] NULL``; a comparison of two literals (``1=1``, what Esri clients send for
  "everything", compiles to ``TRUE``); a bare ``TRUE`` or ``FALSE``.
- **Logic**: ``AND``, ``OR``, ``NOT``, parentheses (NOT binds tightest, then AND, then OR).
- **Spatial, CQL2 text only**: ``S_INTERSECTS(<geometry property>, BBOX(x1, y1, x2, y2))``
  (west, south, east, north, CQL2's order; 6 values add min/max height:
  ``BBOX(w, s, zmin, e, n, zmax)``) or ``ENVELOPE(west, east, north, south)`` (the WKT /
  earlier CQL order, mapped to a bbox). The box is lon/lat EPSG:4326 (CRS84 axis order);
  west > east crosses the antimeridian. Whatever the property is named, it means the layer's
  geometry. In CQL2-JSON a bbox may carry ``"crs"`` (``EPSG:3857``, an OGC CRS URI or URN,
  or an integer), its coordinates then x/y in that system.

Everything else is refused with ``FilterError`` (``.message``, ``.position``: a 0-based
character offset or None) saying what is supported: functions (CASEI, ACCENTI, UPPER, ...),
other spatial or temporal operators, arithmetic, ``||``, subqueries, comparing two
properties, ``;``, comments (``--``, ``/*``), NUL characters. Limits: 10,000 characters of
text, nesting at most 50 deep (parentheses and NOTs in text; operator nodes of the CQL2-JSON
tree), IN lists at most 1,000 items, JSON documents at most 10,000 nodes.

The CQL2-JSON produced: ``{"op": "and"|"or", "args": [...]}``, ``{"op": "not", "args":
[e]}`` (also for NOT LIKE / NOT IN / NOT BETWEEN / IS NOT NULL), ``{"op": "="|"<>"|"<"|
"<="|">"|">=", "args": [a, b]}``, ``{"op": "like", "args": [p, "pattern"]}``, ``{"op":
"in", "args": [p, [v, ...]]}``, ``{"op": "between", "args": [p, lo, hi]}``, ``{"op":
"isNull", "args": [p]}``, ``{"op": "s_intersects", "args": [p, {"bbox": [...]}]}``, with
``p = {"property": name}`` and literals as JSON values, ``{"timestamp": "..."}`` or
``{"date": "..."}``. ``filter_check`` validates such a document (the same subset).

Semantics (SQL and Python alike)
================================

SQL's three-valued logic: a predicate on a NULL (or missing) property is unknown, NOT
unknown is unknown, and a row is selected only when the filter is true. The literal decides
how the property is compared, and ``filter_sql`` asks the caller's ``column(name, kind)``
for the property as that kind:

- number (``kind="number"``): exact decimal comparison (``numeric``). In Python, ints,
  floats (as their shortest decimal repr; NaN equals NaN and sorts above every number) and
  Decimals compare as numbers; a string compares as a number when it is a plain decimal
  number (optional ASCII whitespace, sign, ``digits[.digits]`` or ``.digits``, exponent), else
  the comparison is unknown; booleans and other values are unknown. A caller whose column
  is text (JSON properties) should cast only such strings (e.g. ``CASE WHEN v ~ <that
  pattern> THEN v::numeric END``) so the database agrees and never fails on a cast.
- text (``kind="text"``; also LIKE): compared code point by code point (``COLLATE "C"``),
  case-sensitive. In Python a non-string value compares as its SQL text: ``true``/
  ``false``, integers as digits, floats and Decimals in plain notation (``1e-07`` is
  ``0.0000001``), instants in ISO form.
- boolean (``kind="boolean"``): ``FALSE < TRUE``. Python reads bools, 0 and 1, and the
  strings PostgreSQL's ``boolean`` input reads (``t``, ``true``, ``yes``, ``on``, ``1``,
  prefixes, any case); other values are unknown.
- instant (``kind="any"``, cast to ``timestamptz``): a date is its midnight UTC. Python reads
  datetimes (naive ones are UTC), dates and ISO 8601 strings; others are unknown.
- ``IS NULL`` (``kind="any"``): true for NULL and for a missing property.

``filter_sql`` emits for S_INTERSECTS ``geom && ST_Transform(ST_MakeEnvelope(...), srid)
AND ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(...), srid))`` (two boxes across the
antimeridian; the four corners are transformed, as ST_Transform does, so the box's edges are
straight lines in the layer's CRS). ``filter_match`` builds the same transformed rectangle
with pyproj and uses shapely. A feature without geometry is unknown. A box the layer's CRS
cannot represent (PROJ gives infinities) is a FilterError from ``filter_sql`` too, found with
pyproj before any SQL runs; PROJ keeps the poles finite in Web Mercator, so a whole-world box
works there.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from psycopg import sql

MAX_TEXT = 10_000
MAX_DEPTH = 50
MAX_IN = 1_000
MAX_NODES = 10_000
LANGS = ("cql2-text", "sql-where")

_COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE"})
_SPACE = " \t\r\n\f\v"
_SUPPORTED = (
    "supported: comparisons (= <> != < <= > >=) of a property with a literal, AND, OR, NOT, "
    "parentheses, [NOT] LIKE 'pattern', [NOT] IN (literals), [NOT] BETWEEN a AND b, "
    "IS [NOT] NULL"
)
_SUPPORTED_LANG = {
    "cql2-text": _SUPPORTED
    + ", TIMESTAMP('...'), DATE('...'), S_INTERSECTS(geometry, BBOX(w,s,e,n) | ENVELOPE(w,e,n,s))",
    "sql-where": _SUPPORTED + ", timestamp '...', date '...'",
}
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMERIC_TEXT = re.compile(r"[ \t\n\r\f\v]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\f\v]*")
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FUNCTION_HINTS = {
    "CASEI": "CASEI (case-insensitive comparison) is not supported",
    "ACCENTI": "ACCENTI (accent-insensitive comparison) is not supported",
}


class FilterError(ValueError):
    """A filter outside the supported subset, or malformed; ``position`` is a character offset."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _error(detail: str, position: int | None, *, lang: str | None = None) -> FilterError:
    where = f" at position {position}" if position is not None else ""
    hint = f"; {_SUPPORTED_LANG[lang]}" if lang else ""
    return FilterError(f"{detail}{where}{hint}", position)


# --------------------------------------------------------------------------- tokens


class _Tok:
    __slots__ = ("kind", "value", "pos", "text")

    def __init__(self, kind: str, value: Any, pos: int, text: str) -> None:
        self.kind = kind  # str qident ident num op ( ) , sign eof
        self.value = value
        self.pos = pos
        self.text = text

    def keyword(self, *words: str) -> bool:
        return self.kind == "ident" and self.value.upper() in words

    def describe(self) -> str:
        return "end of input" if self.kind == "eof" else repr(self.text)


def _tokens(text: str, lang: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            i += 1
        elif c == "'" or c == '"':
            j, parts = i + 1, []
            while True:
                k = text.find(c, j)
                if k < 0:
                    what = "string" if c == "'" else "quoted property name"
                    raise _error(f"unterminated {what}", i)
                parts.append(text[j:k])
                if k + 1 < n and text[k + 1] == c:
                    parts.append(c)
                    j = k + 2
                    continue
                break
            value = "".join(parts)
            if "\x00" in value:
                raise _error("NUL characters are not allowed", i)
            if c == '"' and not value:
                raise _error("empty property name", i)
            out.append(_Tok("str" if c == "'" else "qident", value, i, text[i : k + 1]))
            i = k + 1
        elif c.isascii() and (c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit())):
            m = _NUMBER.match(text, i)
            assert m is not None
            j = m.end()
            if j < n and (text[j].isalnum() or text[j] in "_."):
                raise _error(f"malformed number {text[i:j + 1]!r}", i)
            raw = m.group()
            number: int | float = int(raw) if raw.isdigit() else float(raw)
            if isinstance(number, float) and not math.isfinite(number):
                raise _error(f"number out of range {raw!r}", i)
            out.append(_Tok("num", number, i, raw))
            i = j
        elif c.isascii() and (c.isalpha() or c == "_"):
            m = _IDENT.match(text, i)
            assert m is not None
            out.append(_Tok("ident", m.group(), i, m.group()))
            i = m.end()
        elif c in "<>=!":
            two = text[i : i + 2]
            if two in ("<=", ">=", "<>", "!="):
                out.append(_Tok("op", "<>" if two == "!=" else two, i, two))
                i += 2
            elif c == "!":
                raise _error("unsupported operator '!'", i, lang=lang)
            else:
                out.append(_Tok("op", c, i, c))
                i += 1
        elif c in "(),":
            out.append(_Tok(c, c, i, c))
            i += 1
        elif c == "-" and text[i : i + 2] == "--":
            raise _error("comments ('--') are not supported", i, lang=lang)
        elif c == "/" and text[i : i + 2] == "/*":
            raise _error("comments ('/*') are not supported", i, lang=lang)
        elif c in "+-":
            out.append(_Tok("sign", c, i, c))
            i += 1
        elif c == ";":
            raise _error("';' is not supported (one filter expression only)", i, lang=lang)
        elif c in "*/%^":
            raise _error(f"arithmetic ('{c}') is not supported", i, lang=lang)
        elif c == "|" and text[i : i + 2] == "||":
            raise _error("string concatenation ('||') is not supported", i, lang=lang)
        else:
            shown = repr(c) if c.isprintable() and c.isascii() else f"U+{ord(c):04X}"
            raise _error(f"unexpected character {shown}", i, lang=lang)
    out.append(_Tok("eof", None, n, ""))
    return out


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, lang: str) -> None:
        self.lang = lang
        self.toks = _tokens(text, lang)
        self.i = 0
        self.nesting = 0
        self.where: dict[int, int] = {}  # id(node) -> position, for errors found after parsing

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def fail(self, detail: str, tok: _Tok) -> FilterError:
        return _error(detail, tok.pos, lang=self.lang)

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.peek()
        if tok.kind != kind:
            raise self.fail(f"expected {what}, found {tok.describe()}", tok)
        return self.take()

    def node(self, value: dict[str, Any], pos: int) -> dict[str, Any]:
        self.where[id(value)] = pos
        return value

    def parse(self) -> Any:
        tree = self.or_expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.fail(f"unexpected {tok.describe()} after a complete expression", tok)
        return tree

    def enter(self, tok: _Tok) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise _error(f"the filter nests deeper than {MAX_DEPTH} levels", tok.pos)

    def or_expr(self) -> Any:
        return self.joined("OR", self.and_expr)

    def and_expr(self) -> Any:
        return self.joined("AND", self.not_expr)

    def joined(self, word: str, operand: Callable[[], Any]) -> Any:
        start = self.peek().pos
        args = [operand()]
        while self.peek().keyword(word):
            self.take()
            args.append(operand())
        return args[0] if len(args) == 1 else self.node({"op": word.lower(), "args": args}, start)

    def not_expr(self) -> Any:
        tok = self.peek()
        if tok.keyword("NOT"):
            self.take()
            self.enter(tok)
            inner = self.not_expr()
            self.nesting -= 1
            return self.node({"op": "not", "args": [inner]}, tok.pos)
        if tok.kind == "(":
            self.take()
            self.enter(tok)
            inner = self.or_expr()
            self.nesting -= 1
            self.expect(")", "')'")
            return inner
        return self.predicate()

    def predicate(self) -> Any:
        tok = self.peek()
        if tok.kind == "ident" and self.peek(1).kind == "(":
            name = tok.value.upper()
            if self.lang == "cql2-text" and name == "S_INTERSECTS":
                return self.s_intersects()
            if not (self.lang == "cql2-text" and name in ("TIMESTAMP", "DATE")):
                raise self.function_error(tok)
        if tok.keyword("TRUE", "FALSE"):
            nxt = self.peek(1)
            if not (nxt.kind == "op" or nxt.keyword("NOT", "LIKE", "IN", "BETWEEN", "IS")):
                self.take()
                return tok.value.upper() == "TRUE"
        left = self.scalar()
        tok = self.peek()
        if tok.kind == "op":
            self.take()
            right = self.scalar()
            return self.comparison(left, tok.value, right, tok)
        negate = None
        if tok.keyword("NOT"):
            negate = self.take()
            tok = self.peek()
        if tok.keyword("LIKE"):
            self.take()
            node = self.like(left, tok)
        elif tok.keyword("IN"):
            self.take()
            node = self.in_list(left, tok)
        elif tok.keyword("BETWEEN"):
            self.take()
            node = self.between(left, tok)
        elif tok.keyword("IS") and negate is None:
            self.take()
            self.require_property(left, "IS NULL", tok)
            if self.peek().keyword("NOT"):
                negate = self.take()
            null = self.peek()
            if not null.keyword("NULL"):
                raise self.fail(f"expected NULL after IS, found {null.describe()}", null)
            self.take()
            node = self.node({"op": "isNull", "args": [left]}, tok.pos)
        elif tok.kind == "sign":
            raise self.fail(f"arithmetic ('{tok.value}') is not supported", tok)
        else:
            raise self.fail(
                "expected a comparison operator, LIKE, IN, BETWEEN or IS after "
                f"{self.show(left)}, found {tok.describe()}",
                tok,
            )
        if negate is not None:
            return self.node({"op": "not", "args": [node]}, negate.pos)
        return node

    def show(self, value: Any) -> str:
        if isinstance(value, dict) and "property" in value:
            return f"property {value['property']!r}"
        return f"literal {json.dumps(value)}"

    def function_error(self, tok: _Tok) -> FilterError:
        name = tok.value.upper()
        if name in _FUNCTION_HINTS:
            return self.fail(_FUNCTION_HINTS[name], tok)
        if name.startswith("S_"):
            detail = f"spatial operator {tok.value} is not supported (only S_INTERSECTS with a bbox)"
            if self.lang == "sql-where":
                detail = f"spatial operator {tok.value} is not supported in a where clause"
            return self.fail(detail, tok)
        if name.startswith(("T_", "A_")):
            return self.fail(f"operator {tok.value} is not supported", tok)
        return self.fail(f"functions are not supported ({tok.value}(...))", tok)

    def require_property(self, value: Any, what: str, tok: _Tok) -> None:
        if not (isinstance(value, dict) and "property" in value):
            raise self.fail(f"{what} needs a property on its left, not a {self.show(value)}", tok)

    def scalar(self) -> Any:
        tok = self.peek()
        if tok.kind == "qident":
            self.take()
            return {"property": tok.value}
        if tok.kind == "ident":
            word = tok.value.upper()
            nxt = self.peek(1)
            if word in ("TIMESTAMP", "DATE"):
                if self.lang == "cql2-text" and nxt.kind == "(":
                    self.take()
                    self.take()
                    raw = self.expect("str", f"a quoted {word.lower()} inside {word}(...)")
                    self.expect(")", "')'")
                    return self.instant(word, raw)
                if self.lang == "sql-where" and nxt.kind == "str":
                    self.take()
                    return self.instant(word, self.take())
            if nxt.kind == "(":
                raise self.function_error(tok)
            if word in ("TRUE", "FALSE"):
                self.take()
                return word == "TRUE"
            if word == "NULL":
                raise self.fail("NULL is only allowed in IS [NOT] NULL", tok)
            if word == "SELECT":
                raise self.fail("subqueries are not supported", tok)
            if word in _KEYWORDS:
                raise self.fail(f"expected a property or a literal, found {tok.describe()}", tok)
            self.take()
            return {"property": tok.value}
        if tok.kind == "str":
            self.take()
            return tok.value
        if tok.kind == "num":
            self.take()
            return tok.value
        if tok.kind == "sign" and self.peek(1).kind == "num":
            self.take()
            num = self.take()
            return -num.value if tok.value == "-" else num.value
        if tok.kind == "sign":
            raise self.fail(f"arithmetic ('{tok.value}') is not supported", tok)
        if tok.kind == "(":
            raise self.fail("expected a property or a literal, found '(' (subexpressions and subqueries are not supported here)", tok)
        raise self.fail(f"expected a property or a literal, found {tok.describe()}", tok)

    def instant(self, word: str, raw: _Tok) -> dict[str, str]:
        value = raw.value
        if word == "DATE":
            if not _DATE.fullmatch(value) or _to_date(value) is None:
                raise _error(f"invalid date {value!r} (expected YYYY-MM-DD)", raw.pos)
            return {"date": value}
        if _parse_instant(value) is None:
            raise _error(f"invalid timestamp {value!r} (expected ISO 8601, e.g. 2024-01-01T00:00:00Z)", raw.pos)
        return {"timestamp": value}

    def literal(self, what: str) -> tuple[Any, _Tok]:
        tok = self.peek()
        value = self.scalar()
        if isinstance(value, dict) and "property" in value:
            raise self.fail(f"{what} takes literals only, not {self.show(value)}", tok)
        return value, tok

    def comparison(self, left: Any, op: str, right: Any, tok: _Tok) -> dict[str, Any]:
        lp = isinstance(left, dict) and "property" in left
        rp = isinstance(right, dict) and "property" in right
        if lp and rp:
            raise self.fail("comparing two properties is not supported", tok)
        if not lp and not rp and _kind(left) != _kind(right):
            raise self.fail(f"cannot compare a {_kind(left)} with a {_kind(right)}", tok)
        return self.node({"op": op, "args": [left, right]}, tok.pos)

    def like(self, left: Any, tok: _Tok) -> dict[str, Any]:
        self.require_property(left, "LIKE", tok)
        pat = self.peek()
        if pat.kind != "str":
            raise self.fail(f"LIKE takes a quoted pattern, found {pat.describe()}", pat)
        self.take()
        if _like_tokens(pat.value) is None:
            raise _error("a LIKE pattern must not end with the escape character '\\'", pat.pos)
        return self.node({"op": "like", "args": [left, pat.value]}, tok.pos)

    def in_list(self, left: Any, tok: _Tok) -> dict[str, Any]:
        self.require_property(left, "IN", tok)
        self.expect("(", "'(' after IN")
        if self.peek().kind == ")":
            raise self.fail("an IN list needs at least one literal", self.peek())
        items: list[Any] = []
        while True:
            value, vtok = self.literal("IN")
            if items and _kind(value) != _kind(items[0]):
                raise self.fail(f"IN list mixes {_kind(items[0])} and {_kind(value)} literals", vtok)
            items.append(value)
            if len(items) > MAX_IN:
                raise _error(f"an IN list holds at most {MAX_IN} literals", vtok.pos)
            sep = self.peek()
            if sep.kind == ",":
                self.take()
                continue
            if sep.kind == ")":
                self.take()
                break
            raise self.fail(f"expected ',' or ')' in the IN list, found {sep.describe()}", sep)
        return self.node({"op": "in", "args": [left, items]}, tok.pos)

    def between(self, left: Any, tok: _Tok) -> dict[str, Any]:
        self.require_property(left, "BETWEEN", tok)
        low, ltok = self.literal("BETWEEN")
        and_tok = self.peek()
        if not and_tok.keyword("AND"):
            raise self.fail(f"expected AND in BETWEEN, found {and_tok.describe()}", and_tok)
        self.take()
        high, htok = self.literal("BETWEEN")
        if _kind(low) != _kind(high):
            raise self.fail(f"BETWEEN mixes a {_kind(low)} and a {_kind(high)}", htok)
        return self.node({"op": "between", "args": [left, low, high]}, tok.pos)

    def s_intersects(self) -> dict[str, Any]:
        tok = self.take()
        self.take()  # (
        args = [self.geometry_arg()]
        self.expect(",", "',' between the arguments of S_INTERSECTS")
        args.append(self.geometry_arg())
        self.expect(")", "')' closing S_INTERSECTS")
        props = [a for a in args if "property" in a]
        if len(props) != 1:
            raise self.fail("S_INTERSECTS takes a geometry property and a BBOX or ENVELOPE", tok)
        box = next(a for a in args if "bbox" in a)
        return self.node({"op": "s_intersects", "args": [props[0], box]}, tok.pos)

    def geometry_arg(self) -> dict[str, Any]:
        tok = self.peek()
        if tok.kind == "qident" or (
            tok.kind == "ident" and self.peek(1).kind != "(" and tok.value.upper() not in _KEYWORDS
        ):
            self.take()
            return {"property": tok.value}
        if tok.kind == "ident" and tok.value.upper() in ("BBOX", "ENVELOPE"):
            self.take()
            self.take()
            nums: list[float] = []
            while True:
                value, vtok = self.literal(tok.value.upper())
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self.fail(f"{tok.value.upper()} takes numbers", vtok)
                nums.append(value)
                sep = self.expect_any((",", ")"), f"',' or ')' in {tok.value.upper()}")
                if sep.kind == ")":
                    break
            if len(nums) not in (4, 6):
                raise self.fail(f"{tok.value.upper()} takes 4 or 6 numbers, not {len(nums)}", tok)
            if tok.value.upper() == "ENVELOPE":
                w, e, n, s, *z = nums
                nums = [w, s, e, n] if not z else [w, s, z[0], e, n, z[1]]
            try:
                _bbox_plan({"bbox": nums})
            except FilterError as exc:
                raise _error(exc.message, tok.pos) from None
            return {"bbox": nums}
        if tok.kind == "ident" and self.peek(1).kind == "(":
            raise self.fail(
                f"geometry literal {tok.value}(...) is not supported (only BBOX and ENVELOPE)", tok
            )
        raise self.fail(f"expected a geometry property, BBOX(...) or ENVELOPE(...), found {tok.describe()}", tok)

    def expect_any(self, kinds: tuple[str, ...], what: str) -> _Tok:
        tok = self.peek()
        if tok.kind not in kinds:
            raise self.fail(f"expected {what}, found {tok.describe()}", tok)
        return self.take()


def filter_parse(text: str, *, lang: str) -> dict:
    """Parse a CQL2 text filter or an Esri where clause into CQL2-JSON (FilterError if not)."""
    if lang not in LANGS:
        raise FilterError(f"unknown filter language {lang!r} (cql2-text or sql-where)", None)
    if not isinstance(text, str):
        raise FilterError("a filter is a string", None)
    if len(text) > MAX_TEXT:
        raise _error(f"the filter is longer than {MAX_TEXT} characters", MAX_TEXT)
    if not text.strip(_SPACE):
        raise _error("the filter is empty", 0, lang=lang)
    parser = _Parser(text, lang)
    tree = parser.parse()
    _check_depth(tree, 1, parser.where)
    return filter_check(tree)  # type: ignore[return-value]


def _check_depth(node: Any, depth: int, where: Mapping[int, int]) -> None:
    if isinstance(node, dict) and "op" in node:
        if depth > MAX_DEPTH:
            raise _error(f"the filter nests deeper than {MAX_DEPTH} levels", where.get(id(node)))
        if node["op"] in ("and", "or", "not"):
            for arg in node["args"]:
                _check_depth(arg, depth + 1, where)


# --------------------------------------------------------------------------- CQL2-JSON checks


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict) and ("timestamp" in value or "date" in value):
        return "instant"
    return "unknown"


def filter_check(ast: dict) -> dict:
    """Validate a CQL2-JSON filter of the supported subset; returns a normalised copy."""
    counter = [0]
    return _check(ast, 1, counter)  # type: ignore[no-any-return]


def _check(node: Any, depth: int, counter: list[int]) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise FilterError(f"the filter has more than {MAX_NODES} nodes", None)
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict) or "op" not in node:
        raise FilterError(f"expected a filter expression ({{'op': ..., 'args': [...]}}), got {_short(node)}", None)
    if depth > MAX_DEPTH:
        raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels", None)
    op, args = node.get("op"), node.get("args")
    if not isinstance(op, str):
        raise FilterError(f"'op' must be a string, got {_short(op)}", None)
    op = {"!=": "<>", "isnull": "isNull"}.get(op.lower(), op.lower()) if op != "isNull" else op
    if set(node) - {"op", "args"}:
        raise FilterError(f"unexpected members {sorted(set(node) - {'op', 'args'})} in {op!r}", None)
    if not isinstance(args, list):
        raise FilterError(f"'args' of {op!r} must be a list", None)

    def arity(n: int) -> None:
        if len(args) != n:
            raise FilterError(f"{op!r} takes {n} argument(s), got {len(args)}", None)

    if op in ("and", "or"):
        if not args:
            raise FilterError(f"{op!r} needs at least one argument", None)
        return {"op": op, "args": [_check(a, depth + 1, counter) for a in args]}
    if op == "not":
        arity(1)
        return {"op": op, "args": [_check(args[0], depth + 1, counter)]}
    if op in _COMPARISONS:
        arity(2)
        left, right = (_check_scalar(a) for a in args)
        lp, rp = "property" in _as_dict(left), "property" in _as_dict(right)
        if lp and rp:
            raise FilterError("comparing two properties is not supported", None)
        if not lp and not rp and _kind(left) != _kind(right):
            raise FilterError(f"cannot compare a {_kind(left)} with a {_kind(right)}", None)
        return {"op": op, "args": [left, right]}
    if op == "like":
        arity(2)
        prop = _check_property(args[0], "like")
        if not isinstance(args[1], str):
            raise FilterError("'like' takes a string pattern", None)
        _check_literal(args[1])
        if _like_tokens(args[1]) is None:
            raise FilterError("a LIKE pattern must not end with the escape character '\\'", None)
        return {"op": op, "args": [prop, args[1]]}
    if op == "in":
        arity(2)
        prop = _check_property(args[0], "in")
        items = args[1]
        if not isinstance(items, list) or not items:
            raise FilterError("'in' takes a non-empty list of literals", None)
        if len(items) > MAX_IN:
            raise FilterError(f"an IN list holds at most {MAX_IN} literals", None)
        items = [_check_literal(v) for v in items]
        if len({_kind(v) for v in items}) > 1:
            raise FilterError("an IN list mixes literals of different types", None)
        return {"op": op, "args": [prop, items]}
    if op == "between":
        arity(3)
        prop = _check_property(args[0], "between")
        low, high = _check_literal(args[1]), _check_literal(args[2])
        if _kind(low) != _kind(high):
            raise FilterError(f"BETWEEN mixes a {_kind(low)} and a {_kind(high)}", None)
        return {"op": op, "args": [prop, low, high]}
    if op == "isNull":
        arity(1)
        return {"op": op, "args": [_check_property(args[0], "isNull")]}
    if op == "s_intersects":
        arity(2)
        props = [a for a in args if isinstance(a, dict) and "property" in a]
        boxes = [a for a in args if isinstance(a, dict) and "bbox" in a]
        if len(props) != 1 or len(boxes) != 1:
            raise FilterError("'s_intersects' takes a geometry property and a bbox", None)
        box = dict(boxes[0])
        _bbox_plan(box)
        return {"op": op, "args": [_check_property(props[0], "s_intersects"), box]}
    if op in ("casei", "accenti"):
        raise FilterError(f"{op.upper()} is not supported; {_SUPPORTED}", None)
    raise FilterError(f"unsupported operator {op!r}; {_SUPPORTED}, s_intersects with a bbox", None)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_property(value: Any, op: str) -> dict[str, str]:
    if not (isinstance(value, dict) and set(value) == {"property"}):
        raise FilterError(f"{op!r} needs a property ({{'property': name}}) first, got {_short(value)}", None)
    name = value["property"]
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > MAX_TEXT:
        raise FilterError(f"invalid property name {_short(name)}", None)
    return {"property": name}


def _check_scalar(value: Any) -> Any:
    if isinstance(value, dict) and "property" in value:
        return _check_property(value, "comparison")
    return _check_literal(value)


def _check_literal(value: Any) -> Any:
    if value is None:
        raise FilterError("NULL is only allowed in IS [NOT] NULL ('isNull')", None)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"number out of range {value!r}", None)
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise FilterError("NUL characters are not allowed", None)
        if len(value) > MAX_TEXT:
            raise FilterError(f"a string literal is longer than {MAX_TEXT} characters", None)
        return value
    if isinstance(value, dict) and set(value) == {"timestamp"} and isinstance(value["timestamp"], str):
        if _parse_instant(value["timestamp"]) is None:
            raise FilterError(f"invalid timestamp {_short(value['timestamp'])}", None)
        return {"timestamp": value["timestamp"]}
    if isinstance(value, dict) and set(value) == {"date"} and isinstance(value["date"], str):
        if not _DATE.fullmatch(value["date"]) or _to_date(value["date"]) is None:
            raise FilterError(f"invalid date {_short(value['date'])}", None)
        return {"date": value["date"]}
    raise FilterError(f"unsupported literal {_short(value)} (strings, numbers, booleans, timestamps, dates)", None)


def filter_properties(ast: dict) -> set[str]:
    """Property names a filter reads (not the geometry of s_intersects)."""
    names: set[str] = set()
    stack: list[Any] = [filter_check(ast)]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node["op"] in ("and", "or", "not"):
            stack.extend(node["args"])
        elif node["op"] != "s_intersects":
            names.update(a["property"] for a in node["args"] if isinstance(a, dict) and "property" in a)
    return names


# --------------------------------------------------------------------------- value conversions


def _parse_instant(text: str) -> dt.datetime | None:
    if not _INSTANT.fullmatch(text):
        return None
    raw = text[:-1] + "+00:00" if text[-1:] in "Zz" else text
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _to_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _literal_value(value: Any) -> Any:
    """The Python value of a checked literal (Decimal, str, bool or aware datetime)."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if "timestamp" in value:
        return _parse_instant(value["timestamp"])
    day = dt.date.fromisoformat(value["date"])
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _as_number(v: Any) -> Decimal | None:
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        return Decimal(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return Decimal("NaN")
        if math.isinf(f):
            return Decimal("Infinity") if f > 0 else Decimal("-Infinity")
        return Decimal(repr(f))
    if isinstance(v, Decimal):
        return v
    if isinstance(v, str) and _NUMERIC_TEXT.fullmatch(v):
        return Decimal(v.strip(_SPACE))
    return None


def _decimal_text(d: Decimal) -> str:
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "Infinity" if d > 0 else "-Infinity"
    return format(abs(d) if d.is_zero() else d, "f")


def _as_text(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating | Decimal):
        number = _as_number(v)
        return None if number is None else _decimal_text(number)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return None


def _as_boolean(v: Any) -> bool | None:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return {0: False, 1: True}.get(int(v))
    if not isinstance(v, str):
        return None
    s = v.strip(_SPACE).lower()
    # PostgreSQL's boolin: a prefix of true/false/yes/no, on/off (two letters at least), 1/0
    if not s:
        return None
    for word, value in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(s):
            return value
    if len(s) >= 2 and "on".startswith(s):
        return True
    if len(s) >= 2 and "off".startswith(s):
        return False
    return {"1": True, "0": False}.get(s)


def _as_instant(v: Any) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    if isinstance(v, str):
        return _parse_instant(v.strip(_SPACE))
    return None


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "number": _as_number,
    "text": _as_text,
    "boolean": _as_boolean,
    "instant": _as_instant,
}


def _compare(a: Any, b: Any) -> int:
    if isinstance(a, Decimal):
        an, bn = a.is_nan(), b.is_nan()
        if an or bn:  # PostgreSQL's numeric: NaN equals NaN and sorts above every number
            return int(an) - int(bn)
    return (a > b) - (a < b)


_OPS: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "<>": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


_ANY, _ONE = object(), object()  # LIKE's % and _


def _like_tokens(pattern: str) -> list[Any] | None:
    """A LIKE pattern as characters, _ANY and _ONE; None when it ends with the escape '\\'."""
    out: list[Any] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern):
                return None
            out.append(pattern[i + 1])
            i += 2
            continue
        out.append(_ANY if c == "%" else _ONE if c == "_" else c)
        i += 1
    return out


def _like(value: str, tokens: Sequence[Any]) -> bool:
    """Wildcard matching in O(len(value) * len(tokens)): no regex, so no catastrophic backtracking."""
    i = j = 0
    star, mark = -1, 0
    n, m = len(value), len(tokens)
    while i < n:
        if j < m and (tokens[j] is _ONE or tokens[j] == value[i]):
            i += 1
            j += 1
        elif j < m and tokens[j] is _ANY:
            star, mark = j, i
            j += 1
        elif star >= 0:
            j = star + 1
            mark += 1
            i = mark
        else:
            return False
    while j < m and tokens[j] is _ANY:
        j += 1
    return j == m


# --------------------------------------------------------------------------- plans

# Three-valued logic as integers: and = min, or = max, not = 2 - x.
F, U, T = 0, 1, 2
Column = Callable[[str, str], sql.Composable]


class _Node:
    def value(self, props: Mapping[str, Any], geom: Any, srid: int) -> int:
        raise NotImplementedError

    def vector(self, props: Sequence[Mapping[str, Any]], geoms: np.ndarray, srid: int) -> np.ndarray:
        return np.fromiter((self.value(p, geoms[i], srid) for i, p in enumerate(props)), np.int8, len(props))

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        raise NotImplementedError


class _Const(_Node):
    def __init__(self, truth: bool) -> None:
        self.truth = T if truth else F

    def value(self, props: Mapping[str, Any], geom: Any, srid: int) -> int:
        return self.truth

    def vector(self, props: Sequence[Mapping[str, Any]], geoms: np.ndarray, srid: int) -> np.ndarray:
        return np.full(len(props), self.truth, np.int8)

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        return sql.SQL("TRUE" if self.truth == T else "FALSE")


class _Logic(_Node):
    def __init__(self, op: str, args: list[_Node]) -> None:
        self.op, self.args = op, args

    def value(self, props: Mapping[str, Any], geom: Any, srid: int) -> int:
        if self.op == "not":
            return T - self.args[0].value(props, geom, srid)
        pick = min if self.op == "and" else max
        return pick(a.value(props, geom, srid) for a in self.args)

    def vector(self, props: Sequence[Mapping[str, Any]], geoms: np.ndarray, srid: int) -> np.ndarray:
        if self.op == "not":
            return (T - self.args[0].vector(props, geoms, srid)).astype(np.int8)
        pick = np.minimum if self.op == "and" else np.maximum
        out = self.args[0].vector(props, geoms, srid)
        for arg in self.args[1:]:
            out = pick(out, arg.vector(props, geoms, srid))
        return out

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        parts = [a.sql(column, geometry, srid, params) for a in self.args]
        if self.op == "not":
            return sql.SQL("(NOT {})").format(parts[0])
        joiner = sql.SQL(" AND " if self.op == "and" else " OR ")
        return sql.SQL("({})").format(joiner.join(parts))


_CASTS = {"number": "numeric", "boolean": "boolean", "instant": "timestamptz"}
_COLUMN_KIND = {"number": "number", "text": "text", "boolean": "boolean", "instant": "any"}


def _column_sql(column: Column, name: str, kind: str) -> sql.Composable:
    col = column(name, _COLUMN_KIND[kind])
    if kind == "text":
        return sql.SQL('({}) COLLATE "C"').format(col)
    if kind == "instant":
        return sql.SQL("CAST(({}) AS timestamptz)").format(col)
    return sql.SQL("({})").format(col)


def _param_sql(kind: str, value: Any, params: list[Any]) -> sql.Composable:
    params.append(value)
    return sql.SQL("%s::" + _CASTS[kind]) if kind in _CASTS else sql.SQL("%s")


class _Predicate(_Node):
    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind = name, kind
        self.convert = _CONVERT[kind]

    def value(self, props: Mapping[str, Any], geom: Any, srid: int) -> int:
        raw = props.get(self.name)
        if raw is None:
            return U
        value = self.convert(raw)
        return U if value is None else self.test(value)

    def test(self, value: Any) -> int:
        raise NotImplementedError


class _Compare(_Predicate):
    def __init__(self, name: str, op: str, literal: Any, kind: str) -> None:
        super().__init__(name, kind)
        self.op, self.literal = op, literal

    def test(self, value: Any) -> int:
        return T if _OPS[self.op](_compare(value, self.literal)) else F

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        col = _column_sql(column, self.name, self.kind)
        return sql.SQL("({} {} {})").format(col, sql.SQL(self.op), _param_sql(self.kind, self.literal, params))


class _Like(_Predicate):
    def __init__(self, name: str, pattern: str) -> None:
        super().__init__(name, "text")
        self.pattern = pattern
        tokens = _like_tokens(pattern)
        assert tokens is not None
        self.tokens = tokens

    def test(self, value: Any) -> int:
        return T if _like(value, self.tokens) else F

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        params.append(self.pattern)
        return sql.SQL("(({}) LIKE %s ESCAPE '\\')").format(column(self.name, "text"))


class _In(_Predicate):
    def __init__(self, name: str, values: list[Any], kind: str) -> None:
        super().__init__(name, kind)
        self.values = values

    def test(self, value: Any) -> int:
        return T if any(_compare(value, v) == 0 for v in self.values) else F

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        col = _column_sql(column, self.name, self.kind)
        items = sql.SQL(", ").join(_param_sql(self.kind, v, params) for v in self.values)
        return sql.SQL("({} IN ({}))").format(col, items)


class _Between(_Predicate):
    def __init__(self, name: str, low: Any, high: Any, kind: str) -> None:
        super().__init__(name, kind)
        self.low, self.high = low, high

    def test(self, value: Any) -> int:
        return T if _compare(value, self.low) >= 0 and _compare(value, self.high) <= 0 else F

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        col = _column_sql(column, self.name, self.kind)
        low = _param_sql(self.kind, self.low, params)
        high = _param_sql(self.kind, self.high, params)
        return sql.SQL("({} BETWEEN {} AND {})").format(col, low, high)


class _IsNull(_Node):
    def __init__(self, name: str) -> None:
        self.name = name

    def value(self, props: Mapping[str, Any], geom: Any, srid: int) -> int:
        return T if props.get(self.name) is None else F

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        return sql.SQL("(({}) IS NULL)").format(column(self.name, "any"))


def _crs_srid(crs: Any) -> int:
    if isinstance(crs, int) and not isinstance(crs, bool):
        return crs
    if isinstance(crs, str):
        text = crs.strip()
        if text.upper() in ("CRS84", "OGC:CRS84", "CRS84H", "OGC:CRS84H") or re.fullmatch(
            r"(?i)(https?://www\.opengis\.net/def/crs/OGC/1\.3/CRS84h?|urn:ogc:def:crs:OGC:1\.3:CRS84)", text
        ):
            return 4326
        m = re.fullmatch(
            r"(?i)(?:EPSG:|urn:ogc:def:crs:EPSG:[0-9.]*:|https?://www\.opengis\.net/def/crs/EPSG/[0-9.]+/)([0-9]{1,9})",
            text,
        )
        if m:
            return int(m.group(1))
    raise FilterError(f"unsupported bbox crs {_short(crs)} (EPSG:<code>, an OGC CRS URI, or CRS84)", None)


def _bbox_plan(box: Mapping[str, Any]) -> tuple[tuple[tuple[float, float, float, float], ...], int]:
    """(rectangles in the bbox's CRS, its EPSG code); two rectangles across the antimeridian."""
    if set(box) - {"bbox", "crs"}:
        raise FilterError(f"unexpected members in a bbox: {sorted(set(box) - {'bbox', 'crs'})}", None)
    nums = box.get("bbox")
    if not isinstance(nums, list) or len(nums) not in (4, 6):
        raise FilterError("a bbox has 4 or 6 numbers", None)
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in nums):
        raise FilterError("a bbox has finite numbers only", None)
    west, south, east, north = (nums[0], nums[1], nums[2], nums[3]) if len(nums) == 4 else (
        nums[0], nums[1], nums[3], nums[4]
    )
    srid = _crs_srid(box["crs"]) if "crs" in box else 4326
    from executors.base import InvalidInput
    from executors.spatialref import crs_for  # pyproj's database, only when a bbox is used

    try:
        geographic = bool(crs_for(srid).is_geographic)
    except InvalidInput as exc:
        raise FilterError(f"unknown bbox crs EPSG:{srid}", None) from exc
    if south > north:
        raise FilterError(f"bbox south ({south}) is above its north ({north})", None)
    if srid == 4326:
        if not (-90 <= south <= 90 and -90 <= north <= 90):
            raise FilterError("bbox latitudes must lie within [-90, 90]", None)
        if not (-180 <= west <= 180 and -180 <= east <= 180):
            raise FilterError("bbox longitudes must lie within [-180, 180]", None)
    if west > east:
        if not geographic:
            raise FilterError(f"bbox west ({west}) is east of its east ({east})", None)
        return ((float(west), float(south), 180.0, float(north)), (-180.0, float(south), float(east), float(north))), srid
    return ((float(west), float(south), float(east), float(north)),), srid


@lru_cache(maxsize=256)
def _polygons(
    boxes: tuple[tuple[float, float, float, float], ...], box_srid: int, srid: int
) -> tuple[shapely.Geometry, ...]:
    """The rectangles as ST_Transform(ST_MakeEnvelope(...)) makes them: corners transformed."""
    out = []
    for w, s, e, n in boxes:
        ring = np.array([(w, s), (w, n), (e, n), (e, s), (w, s)], dtype=float)
        if box_srid != srid:
            from executors.spatialref import transformer

            x, y = transformer(box_srid, srid).transform(ring[:, 0], ring[:, 1])
            ring = np.column_stack([x, y])
            if not np.isfinite(ring).all():
                raise FilterError(f"the bbox cannot be represented in EPSG:{srid}", None)
        out.append(shapely.Polygon(ring))
    return tuple(out)


class _Intersects(_Node):
    def __init__(self, box: Mapping[str, Any]) -> None:
        self.boxes, self.box_srid = _bbox_plan(box)

    def value(self, props: Mapping[str, Any], geom: Any, srid: int) -> int:
        if geom is None:
            return U
        hit = any(shapely.intersects(geom, p) for p in _polygons(self.boxes, self.box_srid, srid))
        return T if hit else F

    def vector(self, props: Sequence[Mapping[str, Any]], geoms: np.ndarray, srid: int) -> np.ndarray:
        hit = np.zeros(len(geoms), bool)
        for poly in _polygons(self.boxes, self.box_srid, srid):
            hit |= shapely.intersects(geoms, poly)
        return np.where(shapely.is_missing(geoms), U, np.where(hit, T, F)).astype(np.int8)

    def sql(self, column: Column, geometry: sql.Composable, srid: int, params: list[Any]) -> sql.Composable:
        _polygons(self.boxes, self.box_srid, srid)  # a FilterError now, not a database error later
        parts = []
        for w, s, e, n in self.boxes:
            env = sql.SQL(
                "ST_Transform(ST_MakeEnvelope(%s::float8, %s::float8, %s::float8, %s::float8, %s::integer), %s::integer)"
            )
            params.extend([w, s, e, n, self.box_srid, srid, w, s, e, n, self.box_srid, srid])
            parts.append(sql.SQL("({g} && {env} AND ST_Intersects({g}, {env}))").format(g=geometry, env=env))
        return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def _build(node: Any) -> _Node:
    if isinstance(node, bool):
        return _Const(node)
    op, args = node["op"], node["args"]
    if op in ("and", "or", "not"):
        return _Logic(op, [_build(a) for a in args])
    if op in _COMPARISONS:
        left, right = args
        if isinstance(right, dict) and "property" in right:
            left, right, op = right, left, _FLIP[op]
        if not (isinstance(left, dict) and "property" in left):
            result = _OPS[op](_compare(_literal_value(left), _literal_value(right)))
            return _Const(result)
        return _Compare(left["property"], op, _literal_value(right), _kind(right))
    if op == "like":
        return _Like(args[0]["property"], args[1])
    if op == "in":
        return _In(args[0]["property"], [_literal_value(v) for v in args[1]], _kind(args[1][0]))
    if op == "between":
        return _Between(args[0]["property"], _literal_value(args[1]), _literal_value(args[2]), _kind(args[1]))
    if op == "isNull":
        return _IsNull(args[0]["property"])
    return _Intersects(args[1])


@lru_cache(maxsize=256)
def _plan_of(key: str) -> _Node:
    return _build(filter_check(json.loads(key)))


def _plan(ast: Any) -> _Node:
    try:
        key = json.dumps(ast, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise FilterError(f"a filter is a JSON document: {exc}", None) from None
    return _plan_of(key)


# --------------------------------------------------------------------------- public evaluation


def filter_sql(
    ast: dict, *, column: Callable[[str, str], sql.Composable], geometry: sql.Composable, srid: int
) -> tuple[sql.Composed, list]:
    """The filter as a SQL boolean expression with ``%s`` placeholders, and its parameters."""
    params: list[Any] = []
    expr = _plan(ast).sql(column, geometry, int(srid), params)
    return sql.Composed([expr]), params


def filter_match(ast: dict, properties: Mapping[str, Any], geometry: Any = None, *, srid: int = 4326) -> bool:
    """Whether one feature passes the filter (the same semantics as ``filter_sql``)."""
    return _plan(ast).value(properties, geometry, int(srid)) == T


def filter_mask(
    ast: dict, properties: Sequence[Mapping[str, Any]], geometries: Any, *, srid: int
) -> np.ndarray:
    """Per feature, whether it passes the filter (bbox tests vectorised with shapely)."""
    n = len(properties)
    geoms = np.full(n, None, dtype=object) if geometries is None else np.asarray(geometries, dtype=object)
    if len(geoms) != n:
        raise ValueError(f"{n} property rows but {len(geoms)} geometries")
    return _plan(ast).vector(properties, geoms, int(srid)) == T
