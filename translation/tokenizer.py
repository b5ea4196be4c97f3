"""Moses tokenisation as the reference ran it: `tokenizer.perl -q -l {de,en} -threads 8` at mosesdecoder 8c5eaa1.

sacremoses (pinned) ports tokenizer.perl rule by rule. Where the port and the Perl script part ways
on the WMT16 inputs, `ReferenceTokenizer` follows Perl:
- a line that is empty or only whitespace is printed as read (the multi-threaded path of
  tokenizer.perl never tokenises it), so `"   "` stays `"   "`;
- U+001C..U+001F are deleted: Perl's `\\s` does not match them, so its "ASCII junk" rule removes them,
  whereas Python's `\\s` turns them into spaces first (`"a\\x1fb"` is `"ab"`, not `"a b"`);
- letters, digits and numbers are Perl's Unicode classes (`\\p{IsAlnum}`, `\\p{IsAlpha}`, `\\p{IsN}`,
  `\\p{IsLower}`), taken from the `regex` module's Unicode tables; sacremoses' own tables leave out
  scripts such as CJK, which it then splits character by character;
- the English non-breaking prefixes are those of 8c5eaa1: Moses added `Rs` later (4da86c360).

Lines are read and written with `\\n` as the only line end (Perl's `<STDIN>`), so a stray `\\r` never
splits a line. Chunks of lines go to worker processes; the output order is the input order.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import regex
from sacremoses import MosesTokenizer

from common.atomic import atomic_path
from translation.steps import PreprocessError

# Perl's \s on character strings (Unicode rules).
PERL_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANK_LINE = re.compile(f"[{PERL_WHITESPACE}]*")
_NOT_PERL_WHITESPACE_CONTROLS = re.compile("[\x1c-\x1f]")
# Prefixes Moses added to nonbreaking_prefix.<lang> after 8c5eaa1.
_LATER_PREFIXES = {"en": {"Rs"}}
_CHUNK_LINES = 2000

_ALPHA = r"\p{Alphabetic}"
_ALNUM = r"\p{Alphabetic}\p{Nd}"
_NUMBER = r"\p{N}"
_LOWER = regex.compile(r"\p{Lowercase}")


class ReferenceTokenizer(MosesTokenizer):
    """sacremoses' MosesTokenizer with Perl's Unicode classes and 8c5eaa1's prefixes (see the module doc)."""

    PAD_NOT_ISALNUM = regex.compile(rf"([^{_ALNUM}\s\.'`,\-])"), r" \1 "
    COMMA_SEPARATE_1 = regex.compile(rf"([^{_NUMBER}])[,]"), r"\1 , "
    COMMA_SEPARATE_2 = regex.compile(rf"[,]([^{_NUMBER}])"), r" , \1"
    COMMA_SEPARATE_3 = regex.compile(rf"([{_NUMBER}])[,]$"), r"\1 , "
    ENGLISH_SPECIFIC_APOSTROPHE = [  # noqa: RUF012 - sacremoses' interface is this class attribute
        (regex.compile(rf"([^{_ALPHA}])[']([^{_ALPHA}])"), r"\1 ' \2"),
        (regex.compile(rf"([^{_ALPHA}{_NUMBER}])[']([{_ALPHA}])"), r"\1 ' \2"),
        (regex.compile(rf"([{_ALPHA}])[']([^{_ALPHA}])"), r"\1 ' \2"),
        (regex.compile(rf"([{_ALPHA}])[']([{_ALPHA}])"), r"\1 '\2"),
        (regex.compile(rf"([{_NUMBER}])[']([s])"), r"\1 '\2"),
    ]
    _ANY_ALPHA = regex.compile(_ALPHA)

    def __init__(self, lang: str) -> None:
        super().__init__(lang=lang)
        later = _LATER_PREFIXES.get(lang, set())
        self.NONBREAKING_PREFIXES = [p for p in self.NONBREAKING_PREFIXES if p not in later]

    def isanyalpha(self, text: str) -> bool:
        return self._ANY_ALPHA.search(text) is not None

    def islower(self, text: str) -> bool:
        return all(_LOWER.match(c) for c in text)

    def tokenize_line(self, line: str) -> str:
        """One input line (with or without its `\\n`) as tokenizer.perl prints it."""
        if _BLANK_LINE.fullmatch(line):
            return line
        text = _NOT_PERL_WHITESPACE_CONTROLS.sub("", line.removesuffix("\n"))
        return self.tokenize(text, escape=True, return_str=True) + "\n"


_tokenizers: dict[str, ReferenceTokenizer] = {}


def _tokenize_chunk(job: tuple[str, list[str]]) -> list[str]:
    lang, lines = job
    tokenizer = _tokenizers.get(lang)
    if tokenizer is None:
        tokenizer = _tokenizers[lang] = ReferenceTokenizer(lang)
    return [tokenizer.tokenize_line(line) for line in lines]


class TokenizeError(PreprocessError):
    """An input file is missing or not UTF-8; the message names it."""


def _chunks(path: Path, lang: str) -> Iterator[tuple[str, list[str]]]:
    if not path.is_file():
        raise TokenizeError(f"{path}: input to tokenise is missing")
    with path.open(encoding="utf-8", newline="\n") as f:
        batch: list[str] = []
        number = 0
        try:
            for number, line in enumerate(f, 1):  # noqa: B007 - the line number goes into the error
                batch.append(line)
                if len(batch) == _CHUNK_LINES:
                    yield lang, batch
                    batch = []
        except UnicodeDecodeError as exc:
            raise TokenizeError(f"{path}: not UTF-8 after line {number}: {exc.reason}") from exc
        if batch:
            yield lang, batch


def _bounded_map(pool: ProcessPoolExecutor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """pool.map that keeps at most `window` items in flight, so a large file is never all in memory."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def tokenize_files(jobs: list[tuple[Path, Path, str]], workers: int) -> None:
    """Tokenise (src, dst, lang) jobs; chunks of lines go to `workers` processes, order kept."""
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for src, dst, lang in jobs:
            chunks = _chunks(src, lang)
            results = _bounded_map(pool, _tokenize_chunk, chunks, 4 * workers) if pool else map(
                _tokenize_chunk, chunks)
            with atomic_path(dst) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as out:
                for lines in results:
                    out.writelines(lines)
    finally:
        if pool:
            pool.shutdown()
