"""Backend.AI's BinarySize grammar (ai.backend.common.types.BinarySize), for resource labels.

Binary suffixes k..y (powers of 1024, case-insensitive) with optional b/ib/byte(s)/ibyte(s) endings;
spaces and underscores are ignored. `1Gi` (Kubernetes style) is refused, as Backend.AI refuses it.

Stricter than Backend.AI, which hands the number to Python's Decimal and so also takes a sign
(`-1g`, `+1g`), an exponent (`1e9`: a billion bytes, not a GiB), `.5g`, `1.g`, `Infinity`, tabs, and
fractional byte counts (`0.1k`, truncated): none of those is meant in a label, each is refused with
its reason (`stricter_than_backend_ai`), and the differential test against Backend.AI's own parser
(tests/backendai/test_labels_against_backendai.py) holds the module to exactly this list.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = "kmgtpezy"
_PATTERN = re.compile(
    r"^(?P<number>\d+(?:\.\d+)?)(?P<suffix>[kmgtpezy])?(?P<ending>b|ib|bytes?|ibytes?)?$",
    re.IGNORECASE,
)


STRICTER = (
    (re.compile(r"^\s*[-+]"), "a sign"),
    (re.compile(r"\d[eE][-+]?\d"), "an exponent"),
    (re.compile(r"(?:^|[^\d])\.\d|\d\.(?!\d)"), "a decimal point without digits on both sides"),
    (re.compile(r"(?i)infinity"), "'Infinity' (write inf)"),
    (re.compile(r"[^\S ]"), "whitespace other than spaces"),
)


class BinarySizeError(ValueError):
    """A value that Backend.AI's BinarySize parser refuses, or one this module refuses as stricter."""


def stricter_than_backend_ai(value: str) -> str | None:
    """Why the value is refused here although Backend.AI would take it (None if that is not why)."""
    for pattern, what in STRICTER:
        if pattern.search(value):
            return f"{value!r} has {what}, which Backend.AI takes but no label means"
    return None


def parse_binary_size(value: str) -> int | float:
    """Return the size in bytes (`inf` gives infinity), or raise BinarySizeError."""
    text = value.replace(" ", "").replace("_", "")
    if text.lower() == "inf":
        return float("inf")
    match = _PATTERN.match(text)
    if match is None:
        reason = stricter_than_backend_ai(value) or f"{value!r} is not a binary size"
        raise BinarySizeError(f"{reason} (expected e.g. 1g, 256m, 1GiB)")
    suffix, ending = match["suffix"], match["ending"]
    if suffix is None and ending is not None:
        raise BinarySizeError(f"{value!r}: a unit ending needs a size suffix (k, m, g, ...)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:
        raise BinarySizeError(f"{value!r} is not a number") from exc
    multiplier = 1024 ** (_SUFFIXES.index(suffix.lower()) + 1) if suffix else 1
    size = number * multiplier
    if size != size.to_integral_value():
        raise BinarySizeError(f"{value!r} is a fractional number of bytes (Backend.AI would truncate it)")
    return int(size)
