"""An adversarial WMT16-shaped corpus: the raw inputs the preprocessing reads, full of what tokenisers and
cleaners get wrong, generated from a seed (the same bytes on every machine and Python 3.11-3.13).

Each line mixes ordinary words with: the Moses non-breaking prefixes of both languages (numeric-only ones
too, sentence-final ones), numbers with commas and dots, apostrophes and contractions, every character
tokenizer.perl escapes, quotes of several languages, URLs, runs of dots, hyphens; other scripts (CJK,
Hangul, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai), combining marks, emoji; no-break, thin and
zero-width spaces, tabs, C0 control characters, DEL, stray carriage returns, `|`; and pairs the cleaning
drops and keeps on each rule's boundary (blank sides, 80 and 81 words, a length ratio of 9 and just over,
words of 1000 and 1001 characters, characters outside latin-1). The first training part ends without a
newline, so `cat` joins its last line with the next part's first, on both sides alike. The SGM test sets
carry entities, several segments on one line, segments over several lines and upper-case tags.

`write_raw(raw_dir, seed, pairs, test_pairs)` writes the files and returns the RawSources for
translation.preprocess; tests/gnmt/reference_digests.py runs the reference's own scripts on them.
"""

from __future__ import annotations

import random
from html import escape
from pathlib import Path

from translation.layout import LANGS, TEST_SETS, Lang
from translation.preprocess import RawSources

WORDS = {
    "en": ("the", "house", "is", "green", "and", "we", "were", "there", "yesterday", "government", "market",
           "should", "not", "be", "for", "people", "who", "live", "in", "Europe", "State", "Mr", "No", "It",
           "A", "I", "e-mail", "state-of-the-art", "U.S.", "p.m.", "etc", "vs", "Jan", "Art", "pp", "Rs"),
    "de": ("das", "Haus", "ist", "grün", "und", "wir", "waren", "dort", "gestern", "Regierung", "Markt",
           "sollte", "nicht", "sein", "für", "Menschen", "die", "in", "Europa", "leben", "Straße", "Nr",
           "Dr", "Mio", "bzw", "z.B.", "u.a.", "usw", "Str", "Jh", "Abs", "ca", "Größe", "Äpfel", "Öl"),
}
PREFIXED = ("Mr.", "Mrs.", "Dr.", "Prof.", "No.", "Art.", "pp.", "Nr.", "St.", "Jan.", "Rs.", "e.g.", "i.e.",
            "U.S.A.", "z.B.", "u.a.", "usw.", "Mio.", "bzw.", "Abs.", "Jh.", "A.", "B.", "3.", "10.", "99.", "100.",
            "etc.", "vs.", "ca.")
NUMBERS = ("5,300", "3.5", "1,5", "5,", "1.000.000", "2,5%", "10:30", "1990's", "42", "0.5", "-7", "+49", "1/2",
           "3,", "4.")
APOSTROPHES = ("it's", "isn't", "John's", "'tis", "y'all", "rock 'n' roll", "Peters'", "geht's", "l'homme",
               "O'Neil", "'90s", "don't", "''", "'", "`", "``quoted''")
ESCAPED = ("&", "|", "<", ">", "[", "]", "'", '"', "&amp;", "&lt;", "&#124;", "a&b", "x|y|z", "[1]", "<b>")
QUOTES = ("„", "“", "”", "«", "»", "‚", "‘", "’", "‹", "›", "「", "」")
PUNCTUATION = (",", ".", ";", ":", "!", "?", "...", "..", "....", "?..", "!?", "(", ")", "{", "}", "-", "--", "–",
               "—", "/", "\\", "@", "#", "$", "%", "^", "*", "+", "=", "~", "€", "£", "¥", "°", "§", "©", "®",
               "™", "•", "·", "¿", "¡", "½", "²", "µ")
OTHER_SCRIPTS = ("中文句子。", "日本語のテキスト、です。", "한국어 문장입니다.", "Русский текст, да.",
                 "Ελληνικά κείμενα;", "نص عربي،", "טקסט בעברית", "हिन्दी वाक्य।", "ภาษาไทย", "Ünïcödé", "e\u0301te\u0301",
                 "n\u0303", "😀", "🇩🇪", "👍🏽", "Ⅻ", "ﬁne", "Ａｂｃ", "１２３", "ß", "ẞ", "İstanbul", "ǅ")
SPACES = ("\xa0", "\u2009", "\u200b", "\u3000", "\u202f", "\t", "  ", "\u2028", "\x85", "\x0b", "\x0c",
          "\ufeff")
CONTROLS = ("\x01", "\x07", "\x08", "\x0e", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f", "\r")
URLS = ("http://example.com/a?b=1&c=2", "www.example.org", "user@example.com", "C:\\path\\file.txt",
        "#hashtag", "@handle", "file_name.tar.gz", "https://x.de/ä?ö=ü")


def _latin1(text: str) -> bool:
    return all(ord(c) < 256 for c in text)


def _token(rng: random.Random, lang: Lang, wild: bool) -> str:
    """A token; outside latin-1 only on a wild line (the reference's filter drops those pairs)."""
    while True:
        pool = rng.choices(
            (WORDS[lang], PREFIXED, NUMBERS, APOSTROPHES, ESCAPED, QUOTES, PUNCTUATION, OTHER_SCRIPTS, URLS),
            weights=(40, 8, 6, 6, 5, 3, 8, 4, 2))[0]
        token = rng.choice(pool)
        if rng.random() < 0.1:
            token = token.capitalize() if rng.random() < 0.5 else token.upper()
        if wild or _latin1(token):
            return token


def _glue(rng: random.Random, wild: bool) -> str:
    """What goes between two tokens: mostly a space, sometimes nothing or odd whitespace and controls."""
    roll = rng.random()
    if roll < 0.80:
        return " "
    if roll < 0.88:
        return ""
    if roll < 0.96:
        return rng.choice([s for s in SPACES if wild or _latin1(s)])
    return rng.choice(CONTROLS)


def sentence(rng: random.Random, lang: Lang, words: int, wild: bool) -> str:
    text = "".join(_token(rng, lang, wild) + _glue(rng, wild) for _ in range(words))
    if rng.random() < 0.15:
        text = rng.choice([s for s in SPACES if wild or _latin1(s)]) + text
    return text.rstrip(" ") if rng.random() < 0.7 else text


def pair(rng: random.Random) -> tuple[str, str]:
    """One (en, de) pair: mostly a plausible one, sometimes one the cleaning or the latin-1 filter drops."""
    words, wild = rng.randint(1, 30), rng.random() < 0.25
    en, de = sentence(rng, "en", words, wild), sentence(rng, "de", max(1, words + rng.randint(-3, 3)), wild)
    kind = rng.random()
    if kind < 0.03:
        return (en, "") if rng.random() < 0.5 else ("   ", de)  # a blank side
    if kind < 0.06:
        return " ".join([en] * 9), " ".join([de] * 9)  # mostly over 80 words
    if kind < 0.08:  # 80 or 81 words
        count = rng.choice((80, 81))
        return " ".join(["word"] * count), " ".join(["Wort"] * rng.randint(10, 80))
    if kind < 0.10:  # a length ratio of exactly 9, or just over
        return "Yes .", " ".join(["ja"] * rng.choice((18, 19)))
    if kind < 0.12:  # a word of 1000 characters, or 1001
        blob = "Qm9va" * 200 + rng.choice(("", "x"))
        return f"{en} {blob}", f"{de} {blob}"
    if kind < 0.13:
        return f"{en} | piped", f"{de} | Rohr"
    return en, de


def corpus(rng: random.Random, pairs: int) -> list[tuple[str, str]]:
    return [pair(rng) for _ in range(pairs)]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _sgm(name: str, lang: Lang, lines: list[str], ref: bool) -> str:
    tag = "refset" if ref else "srcset"
    head = f'<{tag} setid="{name}" srclang="any"' + (f' trglang="{lang}">' if ref else ">")
    parts = [f'{head}\n<doc sysid="{"ref" if ref else "src"}" docid="adversarial" genre="news" origlang="en">\n'
             "<p>\n"]
    k = 0
    while k < len(lines):
        text = escape(lines[k], quote=False)
        form = k % 7
        if form == 3 and k + 1 < len(lines):  # two segments on one line
            second = escape(lines[k + 1], quote=False)
            parts.append(f'<seg id="{k + 1}">{text}</seg><seg id="{k + 2}">{second}</seg>\n')
            k += 2
            continue
        if form == 5:  # a segment over two lines
            cut = len(text) // 2
            parts.append(f'<seg id="{k + 1}">{text[:cut]}\n{text[cut:]}</seg>\n')
        elif form == 6:
            parts.append(f'<SEG id="{k + 1}">  {text}  </SEG>\n')
        else:
            parts.append(f'<seg id="{k + 1}">{text}</seg>\n')
        k += 1
    parts.append(f"</p>\n</doc>\n</{tag}>\n")
    return "".join(parts)


def write_raw(raw_dir: Path, seed: int, pairs: int, test_pairs: int) -> RawSources:
    """The training corpus in two parts per language and the three SGM test sets, like the WMT16 archives."""
    train = corpus(random.Random(f"adversarial-{seed}-train"), pairs)
    cut = len(train) // 3
    train_paths: dict[Lang, list[Path]] = {}
    for i, lang in enumerate(LANGS):
        first = "\n".join(p[i] for p in train[:cut])  # no final newline: cat joins it with the next part
        rest = "".join(p[i] + "\n" for p in train[cut:])
        train_paths[lang] = [_write(raw_dir / f"part1.de-en.{lang}", first),
                             _write(raw_dir / f"part2.de-en.{lang}", rest)]
    sgm: dict[tuple[str, Lang], Path] = {}
    for name in TEST_SETS:
        test = corpus(random.Random(f"adversarial-{seed}-{name}"), test_pairs)
        for i, lang in enumerate(LANGS):
            role = "ref" if lang == "en" else "src"
            sgm[name, lang] = _write(raw_dir / f"{name}-deen-{role}.{lang}.sgm",
                                     _sgm(name, lang, [p[i] for p in test], ref=role == "ref"))
    return RawSources(train=train_paths, sgm=sgm)
