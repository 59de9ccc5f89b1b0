"""Input bounds shared by the parsers and the actions: JSON depth, storable text, sizes, times.

Python's ``json`` module recurses once per nesting level, so a body of 1,500
nested brackets raises RecursionError (a 500) while it parses; and what does
parse may still be unstorable: PostgreSQL refuses NUL in text and jsonb and
lone UTF-16 surrogates in jsonb, and a Python int past float range raises
OverflowError in arithmetic. The checks here run on the raw bytes before
anything parses them (depth), or walk the parsed value without recursion
(text, numbers, size), and each names the field that holds what it refuses.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from content_modules.errors import InvalidInput, PayloadTooLarge

# Tokens for naming where the nesting went too deep (the error path only): a JSON
# string, or an unterminated one up to the end, so the scan stays linear on hostile
# input (no retry from each escaped quote of an unterminated string).
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.|\\\Z)*+(?:"|\Z)|[\[\]{}:,]', re.DOTALL)
_NAMING_TOKENS = 200_000  # past this many tokens the error names no field (bounded work)

# Escapes that may decode to text PostgreSQL cannot store: NUL or a UTF-16 surrogate
# (a valid pair decodes to one character and passes the exact check below).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# Characters no PostgreSQL text or jsonb column stores.
UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")


def json_depth_error(raw: bytes, limit: int) -> str | None:
    """None when the JSON text nests at most ``limit`` levels, else the path to name.

    A scan of the raw bytes, never a parse, and vectorised: a bracket counts
    when an even number of unescaped quotes precede it (it lies outside every
    string), and the running sum of those brackets is the depth. The first
    test (no more opening brackets than the limit) answers most bodies in two
    C-level counts. The path answered is dotted (``events.3.context``); ``""``
    when the excess lies in no named field.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return None
    if _max_depth(raw) <= limit:
        return None
    return _deep_path(raw, limit)


_STEP_OF = np.zeros(256, dtype=np.int8)
_STEP_OF[[ord("["), ord("{")]] = 1
_STEP_OF[[ord("]"), ord("}")]] = -1
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def _max_depth(raw: bytes) -> int:
    """The deepest nesting of brackets outside strings, in C-level passes.

    Escaped backslashes, then escaped quotes, are dropped (left to right, as
    JSON reads escapes), so every quote left opens or closes a string; all
    but quotes and brackets is dropped; a bracket after an even number of
    quotes lies outside every string.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = np.frombuffer(raw.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    outside = (np.cumsum(kept == ord('"'), dtype=np.int32) & 1) == 0
    counted = _STEP_OF[kept[outside]]
    return int(np.cumsum(counted, dtype=np.int32).max()) if counted.size else 0


def _deep_path(raw: bytes, limit: int) -> str:
    """Where the nesting first passes ``limit``: the field (and batch item) holding it."""
    # Per open container: [is_object, current key or index, last string seen].
    stack: list[list[Any]] = []
    for count, match in enumerate(_TOKEN.finditer(raw)):
        if count > _NAMING_TOKENS:
            return ""
        token = match.group()
        if token in (b"[", b"{"):
            if len(stack) >= limit:
                return _name(stack)
            stack.append([token == b"{", None if token == b"{" else 0, None])
        elif token in (b"]", b"}"):
            if stack:
                stack.pop()
        elif token == b":":
            if stack and stack[-1][0]:
                stack[-1][1] = stack[-1][2]
        elif token == b",":
            if stack and not stack[-1][0]:
                stack[-1][1] += 1
        elif stack:
            stack[-1][2] = token
    return ""


def _name(stack: list[list[Any]]) -> str:
    parts: list[str | int] = []
    for is_object, key, _ in stack[:3]:
        if not is_object:
            parts.append(key)
            continue
        try:
            parts.append(json.loads(key))
        except (TypeError, ValueError):  # no key yet
            break
    return field_name(parts)


def field_name(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """The field an error names for a value at ``parts`` inside a body.

    The root field (``context`` for ``context.a.b``, ``slots`` for
    ``slots.0``), and in a batch (``{"events": [{...}]}``) the item and its
    field (``events.3.occurred_at``); ``""`` under a top-level list.
    """
    if not parts or not isinstance(parts[0], str):
        return ""
    if len(parts) >= 3 and isinstance(parts[1], int) and isinstance(parts[2], str):
        return f"{parts[0]}.{parts[1]}.{parts[2]}"
    return parts[0]


def json_loads_bounded(text: str, *, raw: bytes | None = None, field: str | None = None) -> Any:
    """``json.loads`` behind the depth, text and number checks; raises InvalidInput.

    ``raw`` is the text as UTF-8 when the caller has it (saves encoding it
    again). Errors name ``field`` and the path inside it (``tags.theme.0``).
    """
    if raw is None:
        raw = text.encode("utf-8", "surrogatepass")
    limit = settings.JSON_MAX_DEPTH
    deep = json_depth_error(raw, limit)
    if deep is not None:
        raise InvalidInput(f"Nested deeper than {limit} levels.", field=field or deep or None)
    try:
        value = _DECODER.decode(text)
    except _Infinite:
        # Parse again keeping the infinity, only to name where it is.
        check_storable(json.loads(text, parse_constant=_refuse_constant), field=field)
        raise
    if _SUSPECT_ESCAPE.search(raw):
        check_storable(value, field=field)
    return value


class _Infinite(ValueError):
    pass


def _finite_float(literal: str) -> float:
    number = float(literal)
    if number in _INFINITIES:  # 1e400 parses to inf, which PostgreSQL cannot store
        raise _Infinite(f"{literal[:20]} is past the range of numbers.")
    return number


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON.")


_INFINITIES = (math.inf, -math.inf)
# One decoder for every parse (json.loads with arguments builds one per call).
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def _all_storable(value: Any) -> bool:
    """True when no string, key or float in value is unstorable (the fast walk, no paths)."""
    todo = [value]
    search = UNSTORABLE_CHAR.search
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if search(item):
                return False
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and search(key):
                    return False
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return True


def storable_problem(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """(path, message) for the first text or number no database column can hold.

    Walks without recursion: NUL and lone surrogates in any string or key,
    non-finite floats. None when everything is storable.
    """
    if _all_storable(value):
        return None
    todo: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while todo:
        path, item = todo.pop()
        if isinstance(item, str):
            found = UNSTORABLE_CHAR.search(item)
            if found:
                what = "NUL (0x00)" if found.group() == "\x00" else "lone surrogate"
                return path, f"Text must not contain {what} characters."
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, "Numbers must be finite."
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and UNSTORABLE_CHAR.search(key):
                    return (*path, key), "Keys must not contain NUL or lone surrogate characters."
                todo.append(((*path, key), child))
        elif isinstance(item, list | tuple):
            todo.extend(((*path, i), child) for i, child in enumerate(item))
    return None


def check_storable(value: Any, *, field: str | None = None) -> None:
    """Raise InvalidInput for the first unstorable text or number: naming ``field`` when
    given, else the field of the body that holds it (``field_name``)."""
    problem = storable_problem(value)
    if problem is not None:
        path, message = problem
        raise InvalidInput(message, field=field or field_name(path) or None)


def value_depth(value: Any) -> int:
    """How many containers deep a parsed JSON value nests (a scalar is 0), without recursion."""
    deepest = 0
    todo: list[tuple[int, Any]] = [(0, value)]
    while todo:
        depth, item = todo.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list | tuple):
            continue
        depth += 1
        deepest = max(deepest, depth)
        todo.extend((depth, child) for child in item if isinstance(child, dict | list | tuple))
    return deepest


def json_size(value: Any) -> int:
    """Bytes of the value as compact UTF-8 JSON (its stored size, near enough)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# A number's compact JSON can be longer than the text that was sent (1e15 is
# stored as 1000000000000000.0): at most this many times, whatever the value.
JSON_GROWTH = 5


def check_free_json(
    value: Any, *, field: str, max_bytes: int, max_depth: int, sent_bytes: int | None = None
) -> None:
    """Bound a free JSON object that is stored as given (context, attributes).

    ``sent_bytes`` is the size of the whole request body when known: a body
    too small to hold an oversized value skips the size measurement (the
    recommendation hot path pays two comparisons, not a serialisation).
    Raises InvalidInput (depth, text) or PayloadTooLarge (size), naming the field.
    """
    if any(isinstance(v, dict | list) for v in value.values()):
        depth = value_depth(value)
        if depth > max_depth:
            raise InvalidInput(f"Nested {depth} levels deep; at most {max_depth}.", field=field)
    if sent_bytes is None or sent_bytes < 0 or sent_bytes * JSON_GROWTH > max_bytes:
        check_storable(value, field=field)
        size = json_size(value)
        if size > max_bytes:
            raise PayloadTooLarge(f"{size:,} bytes as JSON; at most {max_bytes:,}.", field=field)


# --- query parameters ------------------------------------------------------------------

# ASCII digits only: str.isdigit() and int() also take "²" and "١٢" (and isdigit then
# int() raises on "²"); 18 digits stay inside a bigint.
_ASCII_ID = re.compile(r"[0-9]{1,18}")


def query_id(value: str, *, field: str, what: str = "an id") -> int:
    """A positive integer query parameter written in ASCII digits; InvalidInput otherwise."""
    if not _ASCII_ID.fullmatch(value) or int(value) == 0:
        raise InvalidInput(f"{field.capitalize()} is {what} (a positive integer).", field=field)
    return int(value)


# --- times -----------------------------------------------------------------------------


def earliest_date() -> date:
    """The earliest date any input may carry (INPUT_EARLIEST_DATE)."""
    return date.fromisoformat(settings.INPUT_EARLIEST_DATE)


def expiry_problem(value: date, *, today: date | None = None) -> str | None:
    """Why an expiry date is out of bounds, or None: in the past, or more than
    EXPIRES_ON_MAX_YEARS ahead."""
    today = today or timezone.localdate()
    if value < today:
        return "Expiry date is in the past."
    years = settings.EXPIRES_ON_MAX_YEARS
    if value > today + timedelta(days=366 * years):
        return f"Expiry date is more than {years} years ahead."
    return None
