import pytest

from common.labels.binary_size import BinarySizeError, parse_binary_size

GIB = 1024**3


@pytest.mark.parametrize(("value", "expected"), [
    ("1g", GIB), ("1G", GIB), ("1GiB", GIB), ("1gb", GIB), ("1 GB", GIB), ("256m", 256 * 1024**2),
    ("512 MiB", 512 * 1024**2), ("1.5g", 3 * GIB // 2), ("4096", 4096), ("64k", 65536), ("1_024", 1024),
])
def test_sizes_the_agent_accepts(value, expected):
    assert parse_binary_size(value) == expected


def test_inf_is_infinite():
    assert parse_binary_size("inf") == float("inf")


@pytest.mark.parametrize("value", ["1Gi", "1b", "1e9", "1.5", "abc", "", "-1g", "1gg"])
def test_sizes_the_agent_refuses(value):
    with pytest.raises(BinarySizeError, match=repr(value).replace("(", r"\(").replace(".", r"\.")):
        parse_binary_size(value)
