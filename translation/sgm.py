"""SGM test sets to plain text, as mosesdecoder's `input-from-sgm.perl` (8c5eaa1) does it.

The Perl script works on bytes (it sets no encoding), so only ASCII whitespace counts as
whitespace: a no-break space inside a segment is kept. It `chop`s every line (drops its last
byte), joins the lines of a segment that spans several, and takes everything between the first
`<seg ...>` and the last `</seg>` on a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from translation.steps import PreprocessError

_SEG_OPEN_AT_END = re.compile(rb"<seg[^>]+>\s*$", re.IGNORECASE)
_SEG_OPEN = re.compile(rb"<seg[^>]+>\s*(.*)\s*$", re.IGNORECASE)
_SEG = re.compile(rb"<seg[^>]+>\s*(.*)\s*</seg>", re.IGNORECASE)
_ASCII_WHITESPACE = re.compile(rb"\s+")


class SgmError(PreprocessError):
    """A segment never closes; the message names the file."""


def _join_next(path: Path, line: bytes, lines: Iterator[bytes]) -> bytes:
    nxt = next(lines, None)
    if nxt is None:
        raise SgmError(f"{path}: unterminated <seg> in line {line[:80]!r}")
    return line + nxt[:-1]


def sgm_segments(path: Path) -> Iterator[bytes]:
    """Each segment's text, whitespace runs collapsed to one space, without the line end."""
    with path.open("rb") as f:
        lines = iter(f)
        for raw in lines:
            line = raw[:-1]
            while _SEG_OPEN_AT_END.search(line):
                line = _join_next(path, line, lines)
            while _SEG_OPEN.search(line) and not _SEG.search(line):
                line = _join_next(path, line, lines)
            match = _SEG.search(line)
            if match:
                yield _ASCII_WHITESPACE.sub(b" ", match.group(1)).strip(b" ")
