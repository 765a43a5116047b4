"""The Weir guest SDK for Python: write a transform as one function.

    import weir

    @weir.transform(columns=["section", "dt", "hr"])
    def route(record: weir.Record):
        event = record.json()
        metadata = weir.field(event, "metadata", dict)
        ...
        return weir.accept(section=..., dt=weir.utc_date(ms), hr=weir.utc_hour(ms))

The function answers each record with `weir.accept(...)` (its partition, in the declared
columns' order, and optionally a new body) or `weir.reject(code, message)`; raising
`weir.Reject` does the same. Any other exception sends the record to the failed location with
its message, and the host runs the next record in a fresh instance.

This module is plain Python: test a transform with pytest, without WebAssembly. `weir transform
build` turns it into a WebAssembly component of the `weir:transform` world (guest-sdk/wit), with
CPython inside and no imports but the host's log.
"""

from __future__ import annotations

import json as _json
import re as _re
from dataclasses import dataclass, field as _field
from typing import Any, Callable, Optional, Union

__all__ = [
    "Accept",
    "Record",
    "Reject",
    "accept",
    "field",
    "log",
    "parse_rfc3339",
    "reject",
    "transform",
    "utc_date",
    "utc_hour",
]

_COLUMN = _re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class Record:
    """One record from the stream."""

    data: bytes
    partition_key: str = ""
    sequence_number: str = ""
    arrival_ms: int = 0
    """Arrival time in Kinesis, in milliseconds since the epoch: the transform's only clock."""

    def text(self) -> str:
        """The data as UTF-8 text; rejects (`invalid_json`) data that is not UTF-8."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Reject("invalid_json", f"the record is not UTF-8: {error}") from None

    def json(self) -> Any:
        """The data as one strict JSON value (RFC 8259): UTF-8 without a byte-order mark, no
        NaN or Infinity, nothing after the value. Objects are dicts that remember repeated keys,
        which `field` refuses. Anything else is rejected with `invalid_json`."""
        text = self.text()
        try:
            value = _json.loads(
                text, object_pairs_hook=_Object.from_pairs, parse_constant=_refuse_constant
            )
            # An escaped lone surrogate (`"\\ud800"`) is valid JSON syntax but no Unicode text.
            if "\\ud" in text or "\\uD" in text:
                _check_text(value)
            return value
        except (ValueError, RecursionError) as error:
            raise Reject("invalid_json", f"the record is not JSON: {error}") from None


class _Object(dict):
    """A JSON object that remembers which keys it saw twice."""

    repeated: frozenset = frozenset()

    @classmethod
    def from_pairs(cls, pairs: list) -> dict:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj  # the common case stays a plain dict
        seen: set = set()
        repeated = cls(pairs)
        repeated.repeated = frozenset(k for k, _ in pairs if k in seen or seen.add(k))
        return repeated


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _out_of_range(value: Any) -> bool:
    """A number beyond any double (`1e400` parses as infinity; NaN and Infinity themselves are
    refused). Refused (`invalid_json`) when a transform reads it through `field`, as typed JSON
    readers refuse the fields they read."""
    if isinstance(value, float):
        return value in (_INF, -_INF)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_DOUBLE


_INF = float("inf")
_MAX_DOUBLE = 1.7976931348623157e308


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError is a ValueError
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def field(obj: dict, name: str, kind: type = object, path: str = "", required: bool = True) -> Any:
    """`obj[name]`, which must be present once and of `kind` (dict, list, str, ...); otherwise
    the record is rejected with `invalid_event`, naming the field's path. With
    `required=False`, a missing field is None (a repeated one is still rejected)."""
    where = f"{path}.{name}" if path else name
    if name in getattr(obj, "repeated", ()):
        raise Reject("invalid_event", f"duplicate field `{where}`")
    if name not in obj:
        if not required:
            return None
        raise Reject("invalid_event", f"missing field `{where}`")
    value = obj[name]
    if _out_of_range(value):
        raise Reject("invalid_json", f"`{where}`: number out of range")
    if kind is not object and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        expected = _TYPE_NAMES.get(kind, kind.__name__)
        raise Reject("invalid_event", f"`{where}` must be {expected}")
    return value


class Reject(Exception):
    """Raised (or returned through `reject`) to send the record to the failed location with a
    machine-readable code and a message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Accept:
    """The record's partition, as (column, value) pairs in order, and an optional new body."""

    partition: tuple
    body: Optional[bytes] = None


def accept(*, body: Union[bytes, str, dict, list, None] = None, **partition: Any) -> Accept:
    """Accepts the record into the partition given as keyword arguments, in the declared
    columns' order: `accept(section="Books", dt="2024-03-10", hr="15")`. Values are passed raw
    (the host escapes them) and converted with `str`. `body` replaces the stored data: bytes or
    text holding one JSON value, or a dict or list to serialise."""
    return Accept(
        partition=tuple((name, _utf8(str(value))) for name, value in partition.items()),
        body=None if body is None else _body_bytes(body),
    )


def _utf8(text: str) -> str:
    text.encode("utf-8")  # a lone surrogate (from a JSON escape) is not UTF-8: refuse it here
    return text


def reject(code: str, message: str) -> Reject:
    """Rejects the record: return it from the transform (or raise it)."""
    return Reject(code, message)


def _body_bytes(body: Union[bytes, str, dict, list]) -> bytes:
    if isinstance(body, (dict, list)):
        return _json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    text = raw.decode("utf-8")
    if "\n" in text or "\r" in text:
        raise ValueError("a replacement body must be on one line")
    _json.loads(text, parse_constant=_refuse_constant)
    return raw


_RFC3339 = _re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> Optional[int]:
    """Milliseconds since the epoch for an RFC 3339 timestamp (`T`, `t` or a space between date
    and time, `Z`, `z` or an offset; a leap second counts as the second's last millisecond), or
    None for anything else, impossible dates included."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None or not text.isascii():
        return None
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    year, month, day = int(year), int(month), int(day)
    hour, minute, second = int(hour), int(minute), int(second)
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    if sign and (int(off_h) > 23 or int(off_m) > 59):
        return None
    if second == 60:
        second, millis = 59, 999
    offset = 0 if not sign else (1 if sign == "+" else -1) * (int(off_h) * 60 + int(off_m))
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return (seconds - offset * 60) * 1000 + millis


def utc_date(millis: int) -> str:
    """The UTC day of a time in milliseconds since the epoch: `YYYY-MM-DD`."""
    year, month, day = _civil_from_days(millis // 86_400_000)
    return f"{year:04d}-{month:02d}-{day:02d}"


def utc_hour(millis: int) -> str:
    """The UTC hour of a time in milliseconds since the epoch: `00`-`23`."""
    return f"{millis // 3_600_000 % 24:02d}"


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


# Howard Hinnant's civil-date algorithms: integer arithmetic, no datetime objects per record.
def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(days: int) -> tuple:
    days += 719_468
    era = days // 146_097
    doe = days - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


@dataclass
class _Registered:
    function: Callable[[Record], Union[Accept, Reject]]
    columns: list = _field(default_factory=list)


_registered: Optional[_Registered] = None


def transform(*, columns: list) -> Callable:
    """Declares the module's transform and the partition columns every accepted record names,
    in order. A module has exactly one."""
    columns = list(columns)
    if not columns or len(columns) > 8 or len(set(columns)) != len(columns):
        raise ValueError("declare 1 to 8 distinct partition columns")
    for column in columns:
        if not isinstance(column, str) or not _COLUMN.fullmatch(column):
            raise ValueError(f"partition column {column!r} is not [a-z0-9_]")

    def register(function: Callable) -> Callable:
        global _registered
        if _registered is not None:
            raise ValueError("a module declares one transform")
        _registered = _Registered(function, columns)
        return function

    return register


def log(line: str) -> None:
    """One debugging line for the host's log; printed when running outside WebAssembly."""
    _log(str(line))


_log: Callable[[str], None] = print


def run(record: Record) -> Union[Accept, Reject]:
    """Runs the declared transform on one record, as the host would: a returned or raised
    `Reject` is the answer (the host checks that an accept names the declared columns)."""
    if _registered is None:
        raise RuntimeError("no transform declared: decorate a function with @weir.transform")
    try:
        answer = _registered.function(record)
    except Reject as rejection:
        return rejection
    if isinstance(answer, Reject):
        return answer
    if not isinstance(answer, Accept):
        raise TypeError(f"the transform returned {type(answer).__name__}, not weir.accept(...) or weir.reject(...)")
    return answer


def declared_columns() -> list:
    """The partition columns the module's transform declared."""
    if _registered is None:
        raise RuntimeError("no transform declared: decorate a function with @weir.transform")
    return list(_registered.columns)
