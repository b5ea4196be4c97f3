"""Backend.AI's BinarySize grammar (ai.backend.common.types.BinarySize), for resource labels.

Binary suffixes k..y (powers of 1024, case-insensitive) with optional b/ib/byte(s)/ibyte(s) endings;
spaces and underscores are ignored. `1Gi` (Kubernetes style) and `1e9` are refused, as the agent does.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = "kmgtpezy"
_PATTERN = re.compile(
    r"^(?P<number>\d+(?:\.\d+)?)(?P<suffix>[kmgtpezy])?(?P<ending>b|ib|bytes?|ibytes?)?$",
    re.IGNORECASE,
)


class BinarySizeError(ValueError):
    """A value that Backend.AI's BinarySize parser refuses."""


def parse_binary_size(value: str) -> int | float:
    """Return the size in bytes (`inf` gives infinity), or raise BinarySizeError."""
    text = value.replace(" ", "").replace("_", "")
    if text.lower() == "inf":
        return float("inf")
    match = _PATTERN.match(text)
    if match is None:
        raise BinarySizeError(f"{value!r} is not a binary size (expected e.g. 1g, 256m, 1GiB)")
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
        raise BinarySizeError(f"{value!r} is a fractional number of bytes")
    return int(size)
