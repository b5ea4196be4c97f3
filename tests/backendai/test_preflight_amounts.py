"""Slot amounts as Backend.AI writes them, read for the preflight's comparison with the key's limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.backendai.preflight import PreflightError, amount


def test_counts_sizes_and_fractions() -> None:
    assert amount(8) == 8 and amount("0.5") == Decimal("0.5")
    assert amount("900g") == 900 * 2**30 and amount("6G") == 6 * 2**30 and amount("1GiB") == 2**30
    assert amount("256m") == 256 * 2**20 and amount("24209522688") == 24209522688
    with pytest.raises(PreflightError, match="'lots' is not a number or size"):
        amount("lots")
