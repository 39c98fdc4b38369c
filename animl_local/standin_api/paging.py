"""The service's pages, as the real imageErrors query makes them.

animl-api pages with mongo-cursor-pagination 8.1.3's `aggregate` (the version its lockfile pins):
`limit` defaults to 50 and is cut to [1, 300]; `paginatedField` defaults to `_id`, any other
field is sorted on with `_id` second; the order is descending unless `sortAscending`; `next` and
`previous` are opaque cursors (base64url of the extended JSON of the edge document's sort values)
and `next` wins when both are given. Every page names its first and last documents as
`previous` and `next`, even the last page: `hasNext` alone says whether there is more. A cursor
that does not decode is thrown as an INTERNAL_SERVER_ERROR. Comparisons follow MongoDB's type
bracketing (a string is never less than a date), and a missing field sorts as null (first when
ascending).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from animl_local.standin_api.store import INTERNAL_SERVER_ERROR, ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 300
# BSON cannot hold undefined, so a cursor of a missing sort value carries this string instead.
UNDEFINED_MARK = "__mixmax__undefined__"


class _Undefined:
    """JavaScript's undefined: a field the document does not have."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class Date:
    """A BSON date (its ISO text): dates and strings never compare."""

    iso: str


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    previous: str | None
    has_previous: bool
    next: str | None
    has_next: bool


def page(documents: Iterable[dict[str, Any]], request: dict[str, Any],
         dates: frozenset[str] = frozenset()) -> Page:
    """One page of `documents` (already filtered, as the pipeline's first `$match` does) for
    the pagination fields of `request`; `dates` names the fields the service stores as Dates.
    A None in a document is a field it does not have (mongoose stores no undefined)."""
    params = _Params.of(request)
    value = _value_getter(params.field, dates)
    past_cursor = params.cursor_match(value)
    kept = [doc for doc in documents if past_cursor(doc)]
    kept.sort(key=lambda doc: _sort_key(doc, value, params.secondary),
              reverse=not params.sort_ascending_now)
    results = kept[:params.limit + 1]
    has_more = len(results) > params.limit
    del results[params.limit:]
    has_previous = _truthy(params.next) or (_truthy(params.previous) and has_more)
    has_next = _truthy(params.previous) or has_more
    if _truthy(params.previous):
        results.reverse()
    first, last = (results[0], results[-1]) if results else (None, None)
    return Page(results, params.token(first, value), has_previous, params.token(last, value),
                has_next)


@dataclass(frozen=True)
class _Params:
    limit: int
    field: str | None
    sort_ascending: bool
    next: Any
    previous: Any

    @classmethod
    def of(cls, request: dict[str, Any]) -> _Params:
        # `_.defaults` fills only what is absent: an explicit null limit stays null (< 1: 1),
        # an explicit null field stays null (not `_id`: sorted on, with `_id` second).
        limit = request["limit"] if "limit" in request else DEFAULT_LIMIT
        limit = 1 if limit is None or limit < 1 else min(limit, MAX_LIMIT)
        field = request["paginatedField"] if "paginatedField" in request else "_id"
        return cls(limit, field, bool(request.get("sortAscending")),
                   _decoded(request.get("next")), _decoded(request.get("previous")))

    @property
    def secondary(self) -> bool:
        return self.field != "_id"

    @property
    def sort_ascending_now(self) -> bool:
        """A `previous` page is read in the opposite order, then turned round."""
        return self.sort_ascending != _truthy(self.previous)

    def cursor_match(self, value: Callable[[dict[str, Any]], Any]
                     ) -> Callable[[dict[str, Any]], bool]:
        """generateCursorQuery's `$match` (built before any document is read, so a cursor it
        cannot take apart fails even on an empty batch): whether a document lies past the
        cursor."""
        cursor = self.next if _truthy(self.next) else self.previous
        if not _truthy(cursor):
            return lambda doc: True
        ascending = self.sort_ascending_now
        beyond = _greater if ascending else _less
        if not self.secondary:
            return lambda doc: beyond(doc["_id"], cursor)
        edge, edge_id = _destructured(cursor)
        if edge is None:  # no stored nulls here (a None is a missing field)
            return lambda doc: (value(doc) is UNDEFINED) != ascending
        if edge is UNDEFINED:
            if ascending:
                return lambda doc: value(doc) is not UNDEFINED or _greater(doc["_id"], edge_id)
            return lambda doc: value(doc) is UNDEFINED and _less(doc["_id"], edge_id)

        def past(doc: dict[str, Any]) -> bool:
            mine = value(doc)
            # Descending, a missing value comes after every value: past any cursor.
            return (beyond(mine, edge) or (_equal(mine, edge) and beyond(doc["_id"], edge_id))
                    or (not ascending and mine is UNDEFINED))
        return past

    def token(self, doc: dict[str, Any] | None,
              value: Callable[[dict[str, Any]], Any]) -> str | None:
        if doc is None:
            return None
        if not self.secondary:
            return _encoded(doc["_id"])
        # object-path's get, which gives the whole document for a null field name
        edge = doc if self.field is None else value(doc)
        return _encoded([UNDEFINED_MARK if edge is UNDEFINED else edge, doc["_id"]])


def _value_getter(field: str | None, dates: frozenset[str]) -> Callable[[dict[str, Any]], Any]:
    """The sort value MongoDB reads: the field by its path (a null field name is the path
    "null"); a field the documents lack is missing from every one."""
    if field == "":
        raise ApiError("FieldPath cannot be constructed with empty string", INTERNAL_SERVER_ERROR)
    path = "null" if field is None else field

    def value(doc: dict[str, Any]) -> Any:
        found = doc.get(path)
        if found is None:
            return UNDEFINED
        return Date(found) if path in dates else found
    return value


# MongoDB's sort order of BSON types (missing sorts as null); only same-order values compare.
def _type_order(value: Any) -> int:
    if value is UNDEFINED or value is None:
        return 1
    if isinstance(value, bool):
        return 8
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, dict):
        return 4
    if isinstance(value, list):
        return 5
    return 9  # Date


def _comparable(value: Any) -> Any:
    if isinstance(value, Date):
        return value.iso
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value if _type_order(value) != 1 else 0


def _sort_key(doc: dict[str, Any], value: Callable[[dict[str, Any]], Any],
              secondary: bool) -> tuple[Any, ...]:
    if not secondary:
        return (_type_order(doc["_id"]), _comparable(doc["_id"]))
    edge = value(doc)
    return (_type_order(edge), _comparable(edge), doc["_id"])


def _brackets(a: Any, b: Any) -> bool:
    order = _type_order(a)
    return order == _type_order(b) and order in (2, 3, 9)


def _less(a: Any, b: Any) -> bool:
    return _brackets(a, b) and _comparable(a) < _comparable(b)


def _greater(a: Any, b: Any) -> bool:
    return _brackets(a, b) and _comparable(a) > _comparable(b)


def _equal(a: Any, b: Any) -> bool:
    return _type_order(a) == _type_order(b) and _comparable(a) == _comparable(b)


def _truthy(value: Any) -> bool:
    """JavaScript's truthiness (an empty list or object is true)."""
    if value is None or value is UNDEFINED or value is False:
        return False
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return bool(value) and value == value  # NaN is false too
    return True


def _destructured(cursor: Any) -> tuple[Any, Any]:
    """`const [value, id] = cursor`: an array or a string gives its first two items."""
    if isinstance(cursor, list | str):
        items = list(cursor)[:2] + [UNDEFINED, UNDEFINED]
        edge = UNDEFINED if items[0] == UNDEFINED_MARK and isinstance(cursor, list) else items[0]
        return edge, items[1]
    raise ApiError("TypeError: the cursor is not iterable", INTERNAL_SERVER_ERROR)


def _encoded(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"),
                      default=lambda v: {"$date": v.iso} if isinstance(v, Date) else str(v))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decoded(token: Any) -> Any:
    """A cursor as the service reads it: only a non-empty one is decoded; Node's base64 skips
    what is not base64, and EJSON.parse throws on what is not JSON."""
    if not token:
        return token
    padded = token.replace("-", "+").replace("_", "/") + "=" * (-len(token) % 4)
    try:
        text = base64.b64decode(padded, validate=False).decode("utf-8", "replace")
        return json.loads(text, object_hook=_revive, parse_constant=_refuse_constant)
    except (ValueError, binascii.Error) as exc:
        raise ApiError(f"SyntaxError: {exc}", INTERNAL_SERVER_ERROR) from None


def _revive(obj: dict[str, Any]) -> Any:
    if list(obj) == ["$date"] and isinstance(obj["$date"], str):
        return Date(obj["$date"])
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"Unexpected token {name[0]} in JSON")
